// Small helpers every kernel file shares (not a module export: index.ts does not re-export this
// file).

/** The byte address of f32/u32/i32 element `i` of the buffer at `base`. */
@inline export function at(base: usize, i: usize): usize {
  return base + (i << 2);
}
