// x[t, d] = word[ids[t], d] + position[t % len, d] + token_type[0, d].
// Dispatched by encoder.rs. Bindings: 0 params, 1 ids [tokens], 2 word table
// (words, same layouts as matmul.wgsl), 3 word scales, 4 position [max_pos, dim],
// 5 token_type [types, dim], 6 x [tokens, dim].
struct Params { tokens: u32, len: u32, dim: u32, kind: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<f32>;
@group(0) @binding(5) var<storage, read> typ: array<f32>;
@group(0) @binding(6) var<storage, read_write> x: array<f32>;

fn word(row: u32, i: u32) -> f32 {
    let e = row * p.dim + i;
    switch p.kind {
        case 0u: { return bitcast<f32>(w[e]); }
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

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
    let i = gid.y * nw.x * 256u + gid.x;
    if (i >= p.tokens * p.dim) { return; }
    let t = i / p.dim;
    let d = i % p.dim;
    // Same association as the CPU: (word + position) + token type.
    x[i] = (word(ids[t], d) + pos[(t % p.len) * p.dim + d]) + typ[d];
}
