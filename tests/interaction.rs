//! The reference feature interaction against hand-computed rows, against a plain
//! full-Gram-then-gather implementation, and every bad input's exact error.

use half::bf16;
use lowp::{Embeddings, Error, InteractionOptions, Isa, Output, Vectors, reference};

/// Runs the reference with f32 inputs and an f32 output of `out_len` elements filled with
/// `fill`.
fn run_f32(
    dense: &[f32],
    emb: Embeddings<'_>,
    options: &InteractionOptions,
    out_len: usize,
    fill: f32,
) -> lowp::Result<Vec<f32>> {
    let mut out = vec![fill; out_len];
    reference::interaction(
        Vectors::F32(dense),
        emb,
        options,
        &mut Output::F32(&mut out),
    )?;
    Ok(out)
}

#[test]
fn one_sample_hand_computed() {
    // x = (1, 2), e1 = (3, 4), e2 = (5, 6): Z10 = 11, Z20 = 17, Z21 = 39.
    let dense = [1.0f32, 2.0];
    let emb = [3.0f32, 4.0, 5.0, 6.0];
    let options = InteractionOptions::new(1, 3, 2);
    let out = run_f32(
        &dense,
        Embeddings::Block(Vectors::F32(&emb)),
        &options,
        5,
        -7.0,
    );
    assert_eq!(out.unwrap(), [1.0, 2.0, 11.0, 17.0, 39.0]);

    // With the diagonal: Z00 = 5, Z10, Z11 = 25, Z20, Z21, Z22 = 61.
    let options = InteractionOptions {
        diagonal: true,
        ..options
    };
    let out = run_f32(
        &dense,
        Embeddings::Block(Vectors::F32(&emb)),
        &options,
        8,
        -7.0,
    );
    assert_eq!(out.unwrap(), [1.0, 2.0, 5.0, 11.0, 25.0, 17.0, 39.0, 61.0]);
}

#[test]
fn batch_padding_stride_and_separate_blocks() {
    // Two samples, F = 3, d = 1: sample 0 = (2; 3, 5), sample 1 = (−1; 4, 0.5).
    let dense = [2.0f32, -1.0];
    let e1 = [3.0f32, 4.0];
    let e2 = [5.0f32, 0.5];
    let block = [3.0f32, 5.0, 4.0, 0.5];
    let options = InteractionOptions {
        pad_to: 8,
        out_stride: Some(10),
        ..InteractionOptions::new(2, 3, 1)
    };
    const G: f32 = -9.0;
    // Row: [x, Z10, Z20, Z21, 0, 0, 0, 0] then 2 untouched gap elements.
    let expected = [
        2.0, 6.0, 10.0, 15.0, 0.0, 0.0, 0.0, 0.0, G, G, //
        -1.0, -4.0, -0.5, 2.0, 0.0, 0.0, 0.0, 0.0,
    ];
    let separate = [Vectors::F32(&e1), Vectors::F32(&e2)];
    let a = run_f32(&dense, Embeddings::Separate(&separate), &options, 18, G).unwrap();
    let b = run_f32(
        &dense,
        Embeddings::Block(Vectors::F32(&block)),
        &options,
        18,
        G,
    )
    .unwrap();
    assert_eq!(a, expected);
    assert_eq!(b, expected);
}

#[test]
fn single_feature_and_empty_dimension() {
    // F = 1: the row is x alone (plus Z00 with the diagonal).
    let dense = [3.0f32, -2.0];
    let options = InteractionOptions::new(1, 1, 2);
    let out = run_f32(&dense, Embeddings::Separate(&[]), &options, 2, 9.0).unwrap();
    assert_eq!(out, [3.0, -2.0]);
    let diagonal = InteractionOptions {
        diagonal: true,
        pad_to: 4,
        ..options
    };
    let out = run_f32(&dense, Embeddings::Separate(&[]), &diagonal, 4, 9.0).unwrap();
    assert_eq!(out, [3.0, -2.0, 13.0, 0.0]);
    // d = 0: every dot product is +0.0.
    let options = InteractionOptions::new(1, 3, 0);
    let out = run_f32(&[], Embeddings::Block(Vectors::F32(&[])), &options, 3, 9.0).unwrap();
    assert_eq!(out.map_bits(), [0.0f32, 0.0, 0.0].map_bits());
}

/// Bits of each element, so that −0.0 ≠ +0.0.
trait MapBits {
    fn map_bits(&self) -> Vec<u32>;
}

impl<const N: usize> MapBits for [f32; N] {
    fn map_bits(&self) -> Vec<u32> {
        self.iter().map(|x| x.to_bits()).collect()
    }
}

impl MapBits for Vec<f32> {
    fn map_bits(&self) -> Vec<u32> {
        self.iter().map(|x| x.to_bits()).collect()
    }
}

#[test]
fn sequential_fused_order() {
    // 1 + 2^-24 + ... : with the chain acc = fma(a, b, acc) from +0.0 over
    // (1·1, 2^-24·1, 2^-24·1), the sum 1 + 2^-24 rounds to 1 (ties to even) twice: 1.0.
    // A pairwise or reversed order would give 1 + 2^-23.
    let tiny = 2f32.powi(-24);
    let dense = [1.0f32, tiny, tiny];
    let emb = [1.0f32, 1.0, 1.0];
    let options = InteractionOptions::new(1, 2, 3);
    let out = run_f32(
        &dense,
        Embeddings::Block(Vectors::F32(&emb)),
        &options,
        4,
        0.0,
    )
    .unwrap();
    assert_eq!(out[3], 1.0);
    // The product is not rounded before the add: after acc = fma(−1, 1 + 2^-11, 0), the
    // step fma(a, a, acc) with a = 1 + 2^-12 keeps a² = 1 + 2^-11 + 2^-24 exactly and
    // leaves 2^-24, where a rounded product (1 + 2^-11) would leave 0.
    let a = 1.0 + 2f32.powi(-12);
    let dense = [-1.0, a];
    let emb = [1.0 + 2f32.powi(-11), a];
    let options = InteractionOptions::new(1, 2, 2);
    let out = run_f32(
        &dense,
        Embeddings::Block(Vectors::F32(&emb)),
        &options,
        3,
        0.0,
    )
    .unwrap();
    assert_eq!(out[2], 2f32.powi(-24));
}

#[test]
fn bf16_inputs_and_output() {
    // bf16 inputs widen exactly; a bf16 output rounds to nearest even and keeps NaN.
    let h = |x: f32| bf16::from_f32(x);
    let dense = [h(1.0), h(1.0)];
    // Z10 = 1 + 2^-8 (exact in f32) is a tie between bf16 1 and 1 + 2^-7: even is 1.
    // Z20 = 1 + 3·2^-8 ties between 1 + 2^-7 and 1 + 2^-6: even is 1 + 2^-6.
    let emb = [h(1.0), h(2f32.powi(-8)), h(1.0), h(3.0 * 2f32.powi(-8))];
    let mut options = InteractionOptions::new(1, 3, 2);
    options.pad_to = 2;
    let mut out = vec![h(-5.0); 6];
    reference::interaction(
        Vectors::Bf16(&dense),
        Embeddings::Block(Vectors::Bf16(&emb)),
        &options,
        &mut Output::Bf16(&mut out),
    )
    .unwrap();
    // Z21 = 1 · 1 + 2^-8 · 3 · 2^-8 = 1 + 3 · 2^-16, below half a bf16 ulp: 1.
    let z21 = 1.0 + 3.0 * 2f32.powi(-16);
    assert_eq!(
        out,
        [
            h(1.0),
            h(1.0),
            h(1.0),
            h(1.0 + 2f32.powi(-6)),
            h(z21),
            h(0.0)
        ]
    );
    assert_eq!(out[2].to_bits(), 0x3f80);
    assert_eq!(out[3].to_bits(), 0x3f82);
    // NaN stays NaN in bf16, never an infinity.
    let dense = [f32::from_bits(0x7fff_ffff)];
    let emb = [1.0f32];
    let mut out = vec![h(0.0); 2];
    reference::interaction(
        Vectors::F32(&dense),
        Embeddings::Block(Vectors::F32(&emb)),
        &InteractionOptions::new(1, 2, 1),
        &mut Output::Bf16(&mut out),
    )
    .unwrap();
    assert!(out[0].is_nan() && out[1].is_nan());
}

/// The unfused way: the full F × F Gram matrix per sample (each entry the same sequential
/// fused chain), then the triangle gathered in DLRM's order and concatenated after x.
fn gram_then_gather(
    dense: &[f32],
    emb: &[f32],
    batch: usize,
    features: usize,
    dim: usize,
    diagonal: bool,
) -> Vec<f32> {
    let mut rows = Vec::new();
    for b in 0..batch {
        let mut t = dense[b * dim..(b + 1) * dim].to_vec();
        t.extend_from_slice(&emb[b * (features - 1) * dim..(b + 1) * (features - 1) * dim]);
        let gram: Vec<f32> = (0..features * features)
            .map(|ij| {
                let (i, j) = (ij / features, ij % features);
                (0..dim).fold(0.0f32, |acc, k| t[i * dim + k].mul_add(t[j * dim + k], acc))
            })
            .collect();
        rows.extend_from_slice(&t[..dim]);
        let offset = usize::from(diagonal);
        for i in 0..features {
            for j in 0..i + offset {
                rows.push(gram[i * features + j]);
            }
        }
    }
    rows
}

#[test]
fn matches_full_gram_then_gather_on_every_level() {
    for &(batch, features, dim) in &[(3, 27, 13), (2, 5, 64), (1, 1, 7), (4, 18, 1), (2, 40, 33)] {
        let dense: Vec<f32> = (0..batch * dim)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.37)
            .collect();
        let emb: Vec<f32> = (0..batch * (features - 1) * dim)
            .map(|i| ((i * 53 % 29) as f32 - 14.0) * 0.11)
            .collect();
        for diagonal in [false, true] {
            let expected = gram_then_gather(&dense, &emb, batch, features, dim, diagonal);
            for &isa in Isa::available() {
                let options = InteractionOptions {
                    diagonal,
                    isa: Some(isa),
                    ..InteractionOptions::new(batch, features, dim)
                };
                let mut out = vec![f32::NAN; expected.len()];
                lowp::interaction(
                    Vectors::F32(&dense),
                    Embeddings::Block(Vectors::F32(&emb)),
                    &options,
                    Output::F32(&mut out),
                )
                .unwrap();
                assert_eq!(
                    out.map_bits(),
                    expected.map_bits(),
                    "{isa} B {batch} F {features} d {dim} diagonal {diagonal}"
                );
            }
        }
    }
}

/// Past 4 MiB of input the kernels prefetch the vectors whose samples lie `d` apart (the
/// separate layout's): the same bits as the reference there, on every level, with a
/// partial last block.
#[test]
fn large_separate_input_matches_the_reference_on_every_level() {
    let (batch, features, dim) = (325, 27, 128);
    assert!(
        batch * features * dim * 4 > 4 << 20,
        "the input crosses 4 MiB"
    );
    let dense: Vec<f32> = (0..batch * dim)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.37)
        .collect();
    let tables: Vec<Vec<f32>> = (0..features - 1)
        .map(|e| {
            (0..batch * dim)
                .map(|i| ((i * 53 % 29 + e) as f32 - 14.0) * 0.11)
                .collect()
        })
        .collect();
    let separate: Vec<Vectors<'_>> = tables.iter().map(|t| Vectors::F32(t)).collect();
    let options = InteractionOptions::new(batch, features, dim);
    let out_len = batch * (dim + features * (features - 1) / 2);
    let expected = run_f32(
        &dense,
        Embeddings::Separate(&separate),
        &options,
        out_len,
        0.0,
    )
    .unwrap();
    for &isa in Isa::available() {
        let mut out = vec![f32::NAN; out_len];
        lowp::interaction(
            Vectors::F32(&dense),
            Embeddings::Separate(&separate),
            &InteractionOptions {
                isa: Some(isa),
                ..options
            },
            Output::F32(&mut out),
        )
        .unwrap();
        assert_eq!(out.map_bits(), expected.map_bits(), "{isa}");
    }
}

#[test]
fn bad_inputs_give_exact_errors() {
    let dense = [0f32; 6];
    let emb = [0f32; 12];
    let block = Embeddings::Block(Vectors::F32(&emb));
    let call = |options: &InteractionOptions, dense: &[f32], emb: Embeddings<'_>, len: usize| {
        let mut out = vec![0f32; len];
        let a = reference::interaction(
            Vectors::F32(dense),
            emb,
            options,
            &mut Output::F32(&mut out),
        );
        let b = lowp::interaction(Vectors::F32(dense), emb, options, Output::F32(&mut out));
        assert_eq!(a, b);
        a
    };
    // B = 2, F = 3, d = 3: row width 3 + 3 = 6.
    let good = InteractionOptions::new(2, 3, 3);
    assert_eq!(call(&good, &dense, block, 12), Ok(()));
    let bad_param = |r: lowp::Result<()>, name: &str| match r {
        Err(Error::BadParameter { name: n, .. }) => assert_eq!(n, name),
        other => panic!("expected BadParameter {name}, got {other:?}"),
    };
    bad_param(
        call(
            &InteractionOptions {
                features: 0,
                ..good
            },
            &dense,
            block,
            12,
        ),
        "features",
    );
    bad_param(
        call(&InteractionOptions { pad_to: 0, ..good }, &dense, block, 12),
        "pad_to",
    );
    bad_param(
        call(
            &InteractionOptions {
                out_stride: Some(5),
                ..good
            },
            &dense,
            block,
            12,
        ),
        "out_stride",
    );
    // One sample: the stride is never used, any value is fine.
    let one = InteractionOptions {
        batch: 1,
        out_stride: Some(0),
        ..good
    };
    assert_eq!(call(&one, &dense, block, 6), Ok(()));
    assert_eq!(
        call(&good, &dense[..5], block, 12),
        Err(Error::InputTooSmall {
            what: "dense",
            needed: 6,
            got: 5
        })
    );
    assert_eq!(
        call(
            &good,
            &dense,
            Embeddings::Block(Vectors::F32(&emb[..11])),
            12
        ),
        Err(Error::InputTooSmall {
            what: "embeddings",
            needed: 12,
            got: 11
        })
    );
    let e = [0f32; 6];
    let short = [0f32; 5];
    bad_param(
        call(&good, &dense, Embeddings::Separate(&[Vectors::F32(&e)]), 12),
        "embeddings",
    );
    assert_eq!(
        call(
            &good,
            &dense,
            Embeddings::Separate(&[Vectors::F32(&e), Vectors::F32(&short)]),
            12
        ),
        Err(Error::InputTooSmall {
            what: "embedding block",
            needed: 6,
            got: 5
        })
    );
    assert_eq!(
        call(&good, &dense, block, 11),
        Err(Error::OutputTooSmall {
            what: "interaction",
            needed: 12,
            got: 11
        })
    );
    // Padding to 8 and a stride of 9: (2 − 1) · 9 + 8 = 17.
    let padded = InteractionOptions {
        pad_to: 8,
        out_stride: Some(9),
        ..good
    };
    assert_eq!(
        call(&padded, &dense, block, 16),
        Err(Error::OutputTooSmall {
            what: "interaction",
            needed: 17,
            got: 16
        })
    );
    // Overflows: pairs, row width, batch × dim, output size.
    let huge = InteractionOptions::new(1, usize::MAX, 1);
    assert_eq!(
        call(&huge, &dense, block, 1),
        Err(Error::SizeOverflow {
            what: "interaction pairs"
        })
    );
    let wide = InteractionOptions::new(1, 3, usize::MAX - 1);
    assert_eq!(
        call(&wide, &dense, block, 1),
        Err(Error::SizeOverflow {
            what: "interaction row width"
        })
    );
    // Width 2^64 − 2 rounded up to a multiple of 2^63 + 1 (on 64-bit targets).
    let rounded = InteractionOptions {
        pad_to: usize::MAX / 2 + 2,
        ..InteractionOptions::new(1, 3, usize::MAX - 4)
    };
    assert_eq!(
        call(&rounded, &dense, block, 1),
        Err(Error::SizeOverflow {
            what: "interaction row width"
        })
    );
    let many = InteractionOptions::new(usize::MAX, 3, 2);
    assert_eq!(
        call(&many, &dense, block, 1),
        Err(Error::SizeOverflow {
            what: "dense size (batch × dim)"
        })
    );
    let strided = InteractionOptions {
        out_stride: Some(usize::MAX),
        ..good
    };
    assert_eq!(
        call(&strided, &dense, block, 12),
        Err(Error::SizeOverflow {
            what: "interaction output size"
        })
    );
    // The kernels' scratch (16 samples' vectors) does not fit, even with no sample at all.
    let empty = InteractionOptions::new(0, 3, 1 << 60);
    assert_eq!(
        call(&empty, &[], Embeddings::Block(Vectors::F32(&[])), 0),
        Err(Error::SizeOverflow {
            what: "interaction scratch size"
        })
    );
    // An explicit level this CPU lacks.
    let foreign = if cfg!(target_arch = "aarch64") {
        Isa::Avx2
    } else {
        Isa::Neon
    };
    let mut out = vec![0f32; 12];
    let r = lowp::interaction(
        Vectors::F32(&dense),
        block,
        &InteractionOptions {
            isa: Some(foreign),
            ..good
        },
        Output::F32(&mut out),
    );
    assert!(matches!(r, Err(Error::UnsupportedIsa { .. })), "{r:?}");
}
