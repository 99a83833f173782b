// The child of scripts/code-cache.js (see there), an ES module as most children are: its preload, index.mjs,
// runs lib/load.js the way such a child does, so that load.js's code is cached too. It sends a first message,
// echoes what it gets, and answers 'done' with the cached code of every module it loaded, taken after it had
// echoed the number of messages given as its argument.
import {createRequire} from 'node:module';
import {sendMessage, getEachMessage} from '../index.mjs';

const {scripts} = createRequire(import.meta.url)('../lib/load.js');
const cachedAfter = Number(process.argv[2]);
const cachedCode = () => Object.fromEntries([...scripts].map(([name, script]) => [name, script.createCachedData()]));

sendMessage({type: 'ready'});
let code;
let echoed = 0;
for await (const message of getEachMessage()) {
  if (message !== null && typeof message === 'object' && message.k === 'done') {
    break;
  }
  sendMessage(message);
  if (++echoed === cachedAfter) {
    code = cachedCode();
  }
}
await sendMessage(code ?? cachedCode());
