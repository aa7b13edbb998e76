// Weight dequantisation, shared by matmul.wgsl and embed.wgsl: encoder.rs
// appends this file to each kernel's source (WGSL has no #include). The
// kernel declares the bindings it reads:
//   w: array<u32>       the packed weights (layouts below)
//   scales: array<f32>  one scale per block of 32 elements (Q8_0, Q4_0)
// Weight layouts (repacked at upload so every load is an aligned u32), for
// element e = row * cols + col of a row-major matrix:
//   kind 0 f32:  w[e] = bits of the value
//   kind 1 Q8_0: w[e/4] holds 4 signed bytes, byte (e%4); scale per 32
//   kind 2 Q4_0: block b = e/32 is 4 words = 16 bytes; element j<16 is the
//                low nibble of byte j, element j>=16 the high nibble of byte j-16;
//                value = nibble - 8; scale per block.

fn dequant(kind: u32, e: u32) -> f32 {
    switch kind {
        case 0u: {
            return bitcast<f32>(w[e]);
        }
        case 1u: {
            let q = extractBits(bitcast<i32>(w[e / 4u]), (e % 4u) * 8u, 8u);
            return f32(q) * scales[e / 32u];
        }
        default: {
            let blk = e / 32u;
            let j = e % 32u;
            let byte = j % 16u;
            let shift = (byte % 4u) * 8u + select(0u, 4u, j >= 16u);
            let q = i32((w[blk * 4u + byte / 4u] >> shift) & 0xFu) - 8;
            return f32(q) * scales[blk];
        }
    }
}
