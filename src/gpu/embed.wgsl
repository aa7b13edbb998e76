// x[t, d] = word[ids[t], d] + position[t % len, d] + token_type[0, d].
// Dispatched by encoder.rs. Bindings: 0 params, 1 ids [tokens], 2 word table
// (words, layouts in dequant.wgsl), 3 word scales, 4 position [max_pos, dim],
// 5 token_type [types, dim], 6 x [tokens, dim].
struct Params { tokens: u32, len: u32, dim: u32, kind: u32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<f32>;
@group(0) @binding(4) var<storage, read> pos: array<f32>;
@group(0) @binding(5) var<storage, read> typ: array<f32>;
@group(0) @binding(6) var<storage, read_write> x: array<f32>;

// dequant: dequant.wgsl, which encoder.rs appends to this source.
fn word(row: u32, i: u32) -> f32 {
    return dequant(p.kind, row * p.dim + i);
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
