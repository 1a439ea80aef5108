// regula WebAssembly kernels: the twins of the jacobian WGSL family (src/wasm/kernels/jacobian.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
