// regula WebAssembly kernels: the twins of the pool WGSL family (src/wasm/kernels/pool.ts calls them).
// Every export here becomes an export of the module (index.ts re-exports this file).
