// Exact type assertions for the type tests: `expectType<Equal<A, B>>(true)` compiles only if A and B are the
// same type (not merely assignable to each other).
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

export const expectType = <T,>(value: T): T => value;
