// lz4js ships no types; only the block functions the codec uses are declared.
declare module 'lz4js' {
  const lz4: {
    compressBound(n: number): number;
    compressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number;
    decompressBlock(src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, dIndex: number): number;
  };
  export default lz4;
}
