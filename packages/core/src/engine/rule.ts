// The direction a metric improves in: a leaf of its own, so that the options and the
// retention policy (which ranks bests by it) both use it without importing each other.
export type Rule = 'greater' | 'less';
