import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BoundMethods } from './bound-method.js';

class Counter {
  count = 0;
  bump(): number {
    return ++this.count;
  }
}

test('a method is bound to its target once: every get hands out the same function, which calls the target', () => {
  const counter = new Counter();
  const methods = new BoundMethods(counter);
  const bump = methods.get('bump') as () => number;
  assert.equal(methods.get('bump'), bump, 'no new function per get (a proxy binding on each get made one per request)');
  assert.equal(bump(), 1);
  assert.equal(counter.count, 1);
});

test('values that are not functions are read from the target on every get', () => {
  const counter = new Counter();
  const methods = new BoundMethods(counter);
  assert.equal(methods.get('count'), 0);
  counter.count = 5;
  assert.equal(methods.get('count'), 5);
  assert.equal(methods.get('missing'), undefined);
});
