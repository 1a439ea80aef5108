// regula WebAssembly kernels: the twins of the augment WGSL family (src/wasm/kernels/augment.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
