// regula WebAssembly kernels: the twins of the svd WGSL family (src/wasm/kernels/svd.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
