// regula WebAssembly kernels: the twins of the elementwise WGSL family (src/wasm/kernels/elementwise.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
