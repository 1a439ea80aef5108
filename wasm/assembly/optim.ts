// regula WebAssembly kernels: the twins of the optim WGSL family (src/wasm/kernels/optim.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
