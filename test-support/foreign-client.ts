// A client seen through another object, as a second copy (or another version) of an
// SDK would be: every property reads through to the real client, but the object is not
// `instanceof` the SDK's class. The backends must accept clients by their shape.
export function foreignClient<T extends object>(client: T): T {
  return new Proxy(Object.create(null), {
    get: (_target, key) => {
      const value = Reflect.get(client, key);
      return typeof value === 'function' ? value.bind(client) : value;
    },
  });
}
