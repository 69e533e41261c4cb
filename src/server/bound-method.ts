// The proxies in front of the backend (the start-up proxy in index.ts, the traffic recorder)
// hand out the target's methods bound to it. Binding on every get made a new function for every
// request, twice per backend call and twice more for identify() when the call carries a token:
// in members' CPU profiles under 64 linearizable range clients with a token per request
// (2026-12-06), the caller's identification took 8% of a member's busy CPU, half of it there.
// A backend's methods never change, so each is looked up and bound once per target.

/** The methods of one target, bound to it, each made on its first get and kept. */
export class BoundMethods {
  private readonly methods = new Map<PropertyKey, unknown>();

  constructor(readonly target: object) {}

  /** `target[property]`, bound to `target` when it is a function (the same function every time). */
  get(property: PropertyKey): unknown {
    const known = this.methods.get(property);
    if (known !== undefined) return known;
    const value = Reflect.get(this.target, property) as unknown;
    if (typeof value !== 'function') return value;
    const bound = (value as (...args: unknown[]) => unknown).bind(this.target);
    this.methods.set(property, bound);
    return bound;
  }
}
