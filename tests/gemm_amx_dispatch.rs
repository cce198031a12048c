//! The AMX level: automatic dispatch runs the AVX-512 VNNI kernel below the crossover batch
//! and the tile kernel from it, both on weights packed once for AMX; and the tile kernel
//! is exact at extreme operands over a depth that wraps i32 and shapes that are no tile
//! multiple. Passes trivially (and says so) on a CPU or OS without AMX.

use lowp::registry::last_run;
use lowp::{
    GemmOutput, Isa, OutputStage, PackedB, PerColumn, QuantType, RequantBias, U8I8Problem,
    WeightLayout, gemm_u8i8_packed, reference,
};

fn amx_here() -> bool {
    if let Some(why) = Isa::Amx.unavailable_reason() {
        println!("AMX not available: {why}");
        return false;
    }
    true
}

#[test]
fn automatic_amx_packing_switches_kernel_at_the_crossover() {
    if !amx_here() || Isa::best() != Ok(Isa::Amx) {
        return;
    }
    let (n, k) = (40, 70);
    let b: Vec<i8> = (0..k * n).map(|i| (i * 37 % 256) as i8).collect();
    let packed = PackedB::new(&b, k, n, WeightLayout::KByN, PerColumn::Tensor(2), None).unwrap();
    assert_eq!(packed.isa(), Isa::Amx);
    let mut seen = Vec::new();
    for m in 1..=9 {
        let a: Vec<u8> = (0..m * k).map(|i| (i * 11 % 256) as u8).collect();
        let problem = U8I8Problem {
            m,
            n,
            k,
            a: &a,
            a_stride: k,
            a_zero_point: 9,
            b: &b,
            b_zero_point: PerColumn::Tensor(2),
        };
        let mut want = vec![0i32; m * n];
        reference::gemm_u8i8(
            &problem,
            &OutputStage::RawI32,
            &mut GemmOutput::I32(&mut want),
            n,
        )
        .unwrap();
        let mut got = vec![0i32; m * n];
        gemm_u8i8_packed(
            m,
            &a,
            k,
            9,
            &packed,
            &OutputStage::RawI32,
            GemmOutput::I32(&mut got),
            n,
        )
        .unwrap();
        assert_eq!(got, want, "m = {m}");
        seen.push(last_run().unwrap().1);
    }
    // Below the crossover (3 rows, measured: see the README) VNNI, from it AMX.
    let expected: Vec<Isa> = (1..=9)
        .map(|m| if m < 3 { Isa::Avx512Vnni } else { Isa::Amx })
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn tiles_are_exact_at_extremes_over_a_wrapping_depth() {
    if !amx_here() {
        return;
    }
    // 255 · −128 · 70 000 wraps i32; 37 rows and 45 columns leave partial tiles, 70 000 is
    // no multiple of 64.
    let (m, n, k) = (37, 45, 70_000);
    let a = vec![255u8; m * k];
    let b = vec![-128i8; k * n];
    let problem = U8I8Problem {
        m,
        n,
        k,
        a: &a,
        a_stride: k,
        a_zero_point: 0,
        b: &b,
        b_zero_point: PerColumn::Tensor(0),
    };
    let stages = [
        OutputStage::RawI32,
        OutputStage::Requantize {
            out: QuantType::U8,
            bias: RequantBias::None,
            multiplier: PerColumn::Tensor(1e-9),
            zero_point: 128,
            relu: false,
        },
    ];
    for stage in stages {
        let raw = matches!(stage, OutputStage::RawI32);
        let (mut want, mut got) = (vec![0i32; m * n], vec![0i32; m * n]);
        let (mut want8, mut got8) = (vec![0u8; m * n], vec![0u8; m * n]);
        let (mut w, g) = if raw {
            (GemmOutput::I32(&mut want), GemmOutput::I32(&mut got))
        } else {
            (GemmOutput::U8(&mut want8), GemmOutput::U8(&mut got8))
        };
        reference::gemm_u8i8(&problem, &stage, &mut w, n).unwrap();
        lowp::gemm_u8i8(&problem, &stage, g, n, Some(Isa::Amx)).unwrap();
        assert_eq!(last_run().unwrap().1, Isa::Amx);
        assert_eq!((got, got8), (want, want8));
    }
}
