// Squares every number it receives, until the parent disconnects.
import {getEachMessage, sendMessage} from '../index.mjs';

for await (const {n} of getEachMessage()) {
  await sendMessage({square: n * n});
}
