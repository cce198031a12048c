//! Checks of the C program's non-result lines: struct layouts, enum values, ISA
//! information, and the statuses and messages of bad-input calls.

use super::*;
use crate::expected::isa_code;

pub fn check_layouts(lines: &[&str]) {
    use std::mem::{offset_of, size_of};
    let mut expected: BTreeMap<String, usize> = BTreeMap::new();
    let mut put = |key: &str, value: usize| {
        expected.insert(key.to_string(), value);
    };
    put(
        "layout lowp_embedding_bag_spec size",
        size_of::<LowpEmbeddingBagSpec>(),
    );
    put("layout lowp_bags size", size_of::<LowpBags>());
    put("layout lowp_status size", size_of::<LowpStatus>());
    macro_rules! offsets {
        ($c:literal, $t:ty, $($f:ident),*) => {
            $(put(concat!("offset ", $c, " ", stringify!($f)), offset_of!($t, $f));)*
        };
    }
    offsets!(
        "lowp_embedding_bag_spec",
        LowpEmbeddingBagSpec,
        dim,
        prefetch_distance,
        format,
        index_type,
        weights,
        pooling,
        output,
        prefetch_hint,
        isa
    );
    offsets!(
        "lowp_bags",
        LowpBags,
        indices,
        num_indices,
        bounds,
        num_bounds,
        weights,
        num_weights,
        bounds_kind,
        bounds_type
    );
    put("layout lowp_vectors size", size_of::<LowpVectors>());
    put("offset lowp_vectors data", offset_of!(LowpVectors, data));
    put("offset lowp_vectors len", offset_of!(LowpVectors, len));
    put("offset lowp_vectors type", offset_of!(LowpVectors, r#type));
    put(
        "layout lowp_interaction_options size",
        size_of::<LowpInteractionOptions>(),
    );
    offsets!(
        "lowp_interaction_options",
        LowpInteractionOptions,
        batch,
        features,
        dim,
        pad_to,
        out_stride,
        diagonal,
        isa
    );
    put(
        "layout lowp_output_stage size",
        size_of::<LowpOutputStage>(),
    );
    offsets!(
        "lowp_output_stage",
        LowpOutputStage,
        scales,
        num_scales,
        bias_i32,
        bias_f32,
        act_times_w_scale,
        num_act_times_w_scale,
        kind,
        bias_kind,
        zero_point,
        relu,
        a_scale
    );
    let mut seen = BTreeSet::new();
    for line in lines
        .iter()
        .filter(|l| l.starts_with("layout ") || l.starts_with("offset "))
    {
        let (key, value) = line.rsplit_once(' ').unwrap();
        let want = expected
            .get(key)
            .unwrap_or_else(|| panic!("C printed {key:?}, which Rust does not know"));
        assert_eq!(value.parse::<usize>().unwrap(), *want, "{key}: C vs Rust");
        seen.insert(key.to_string());
    }
    let missing: Vec<_> = expected.keys().filter(|k| !seen.contains(*k)).collect();
    assert!(missing.is_empty(), "C did not print {missing:?}");
}

pub fn check_enums(lines: &[&str]) {
    use LowpStatus as S;
    let statuses = [
        ("LOWP_OK", S::Ok),
        ("LOWP_ERR_NULL_POINTER", S::NullPointer),
        ("LOWP_ERR_MISALIGNED", S::Misaligned),
        ("LOWP_ERR_SIZE_OVERFLOW", S::SizeOverflow),
        ("LOWP_ERR_BAD_PARAMETER", S::BadParameter),
        ("LOWP_ERR_INDEX_OUT_OF_RANGE", S::IndexOutOfRange),
        ("LOWP_ERR_BAD_BAGS", S::BadBags),
        ("LOWP_ERR_WEIGHT_COUNT", S::WeightCount),
        ("LOWP_ERR_INPUT_TOO_SMALL", S::InputTooSmall),
        ("LOWP_ERR_OUTPUT_TOO_SMALL", S::OutputTooSmall),
        ("LOWP_ERR_TABLE_SIZE", S::TableSize),
        ("LOWP_ERR_UNSUPPORTED_ISA", S::UnsupportedIsa),
        ("LOWP_ERR_UNREPRESENTABLE_ROW", S::UnrepresentableRow),
        ("LOWP_ERR_ALIASING", S::Aliasing),
        ("LOWP_ERR_PANIC", S::Panic),
    ];
    let mut expected: BTreeMap<&str, i64> = statuses.iter().map(|&(n, s)| (n, s as i64)).collect();
    // The other enums' values are how this test decodes the C program's keys below
    // (Format::ALL order, IndexType, …); they are pinned here so the header cannot drift.
    for (names, first) in [
        (&["LOWP_ISA_AUTO"][..], -1),
        (
            &[
                "LOWP_FORMAT_F32",
                "LOWP_FORMAT_F16",
                "LOWP_FORMAT_BF16",
                "LOWP_FORMAT_Q8",
                "LOWP_FORMAT_Q4",
                "LOWP_FORMAT_Q2",
            ][..],
            0,
        ),
        (
            &["LOWP_FLOAT_F32", "LOWP_FLOAT_F16", "LOWP_FLOAT_BF16"][..],
            0,
        ),
        (&["LOWP_INDEX_I32", "LOWP_INDEX_I64"][..], 0),
        (
            &[
                "LOWP_WEIGHTS_NONE",
                "LOWP_WEIGHTS_PER_INDEX",
                "LOWP_WEIGHTS_POSITIONAL",
            ][..],
            0,
        ),
        (&["LOWP_POOLING_SUM", "LOWP_POOLING_MEAN"][..], 0),
        (
            &[
                "LOWP_PREFETCH_L1",
                "LOWP_PREFETCH_L2",
                "LOWP_PREFETCH_L3",
                "LOWP_PREFETCH_NON_TEMPORAL",
            ][..],
            0,
        ),
        (
            &[
                "LOWP_BOUNDS_OFFSETS",
                "LOWP_BOUNDS_OFFSETS_WITHOUT_LAST",
                "LOWP_BOUNDS_LENGTHS",
            ][..],
            0,
        ),
        (&["LOWP_CLIPPING_MIN_MAX", "LOWP_CLIPPING_GREEDY"][..], 0),
        (
            &["LOWP_EMBEDDINGS_BLOCK", "LOWP_EMBEDDINGS_SEPARATE"][..],
            0,
        ),
        (&["LOWP_WEIGHTS_K_BY_N", "LOWP_WEIGHTS_N_BY_K"][..], 0),
        (
            &[
                "LOWP_STAGE_RAW_I32",
                "LOWP_STAGE_REQUANTIZE_U8",
                "LOWP_STAGE_REQUANTIZE_I8",
                "LOWP_STAGE_DEQUANTIZE",
            ][..],
            0,
        ),
        (&["LOWP_BIAS_NONE", "LOWP_BIAS_I32", "LOWP_BIAS_F32"][..], 0),
        (&["LOWP_ROW_MAJOR", "LOWP_COL_MAJOR"][..], 101),
        (&["LOWP_NO_TRANS", "LOWP_TRANS"][..], 111),
    ] {
        for (i, name) in names.iter().enumerate() {
            expected.insert(name, first + i as i64);
        }
    }
    assert_eq!(
        Format::ALL.len(),
        6,
        "a new format needs a LOWP_FORMAT_ value"
    );
    let mut seen = 0;
    for line in lines.iter().filter(|l| l.starts_with("enum ")) {
        let mut words = line.split_whitespace().skip(1);
        let (name, value) = (words.next().unwrap(), words.next().unwrap());
        assert_eq!(
            Some(&value.parse::<i64>().unwrap()),
            expected.get(name),
            "{name}"
        );
        seen += 1;
    }
    assert_eq!(seen, expected.len(), "every enum value printed once");
}

pub fn check_isa(lines: &[&str]) {
    let find = |prefix: &str| -> Vec<&str> {
        lines
            .iter()
            .filter_map(|l| l.strip_prefix(prefix))
            .collect()
    };
    assert_eq!(find("version "), [env!("CARGO_PKG_VERSION")]);
    let names = find("isa name ");
    assert_eq!(names.len(), 7);
    let mut mask = 0u32;
    for (code, line) in names.iter().enumerate() {
        let (c, name) = line.split_once(' ').unwrap();
        assert_eq!(c.parse::<usize>().unwrap(), code);
        let isa = Isa::from_name(name).unwrap_or_else(|| panic!("unknown name {name}"));
        assert_eq!(isa_code(isa), code as i64);
        if isa.is_available() {
            mask |= 1 << code;
        }
    }
    assert_eq!(
        find("isa available "),
        [format!("{mask} detected {}", isa_code(Isa::detected())).as_str()]
    );
    match Isa::best() {
        Ok(best) => assert_eq!(find("isa chosen "), [isa_code(best).to_string().as_str()]),
        Err(e) => {
            let reported = find("error isa_chosen ");
            assert_eq!(reported.len(), 1);
            assert!(reported[0].contains(&e.to_string()), "{reported:?} vs {e}");
        }
    }
}

pub fn check_errors(lines: &[&str]) {
    use LowpStatus as S;
    let foreign = if cfg!(target_arch = "x86_64") {
        "neon"
    } else {
        "avx2"
    };
    let expected: &[(&str, LowpStatus, &[&str])] = &[
        (
            "index_out_of_range",
            S::IndexOutOfRange,
            &["lowp_embedding_bag_run:", "index 99", "position 1 of bag 2"],
        ),
        (
            "null_indices",
            S::NullPointer,
            &["lowp_embedding_bag_run:", "bags->indices is NULL"],
        ),
        ("null_bags", S::NullPointer, &["bags is NULL"]),
        (
            "misaligned_weights",
            S::Misaligned,
            &["bags->weights", "aligned to 4 bytes"],
        ),
        ("offsets_decreasing", S::BadBags, &["offsets[2] = 2"]),
        (
            "out_too_small",
            S::OutputTooSmall,
            &["61 elements needed, 60 given"],
        ),
        (
            "table_size",
            S::TableSize,
            &["lowp_embedding_bag_run:", "table"],
        ),
        (
            "bad_enum",
            S::BadParameter,
            &[
                "lowp_embedding_bag_create:",
                "spec->pooling",
                "7 is not a lowp_pooling",
            ],
        ),
        ("foreign_isa", S::UnsupportedIsa, &[foreign]),
        ("null_plan_out", S::NullPointer, &["plan is NULL"]),
        (
            "null_mask",
            S::NullPointer,
            &["lowp_isa_available:", "mask is NULL"],
        ),
        (
            "isa_name_auto",
            S::BadParameter,
            &["lowp_isa_name:", "LOWP_ISA_AUTO"],
        ),
        (
            "size_overflow",
            S::SizeOverflow,
            &["lowp_table_bytes:", "overflow"],
        ),
        (
            "quantize_float_format",
            S::BadParameter,
            &["lowp_quantize:", "format", "f16"],
        ),
        ("quantize_out_size", S::TableSize, &["lowp_quantize:"]),
        (
            "u8i8_scales",
            S::BadParameter,
            &[
                "lowp_gemm_u8i8_packed:",
                "multiplier",
                "2 per-column values given for 19",
            ],
        ),
        (
            "u8i8_short_a",
            S::InputTooSmall,
            &["lowp_gemm_u8i8_packed:", "127 elements needed, 40 given"],
        ),
        (
            "packed_b_short",
            S::InputTooSmall,
            &["lowp_packed_b_create:", "B"],
        ),
        (
            "interaction_f16",
            S::BadParameter,
            &["lowp_interaction:", "dense", "not f16"],
        ),
        (
            "interaction_null_embeddings",
            S::NullPointer,
            &["lowp_interaction:", "embeddings is NULL"],
        ),
        (
            "quantize_rows_reversed",
            S::BadParameter,
            &["lowp_quantize_rows:", "5..4"],
        ),
        (
            "dequantize_out_small",
            S::OutputTooSmall,
            &["lowp_dequantize:", "130 elements needed, 8 given"],
        ),
        (
            "gemm_alias",
            S::Aliasing,
            &["lowp_gemm_i64:", "C (bytes", "overlaps A"],
        ),
        ("gemm_null", S::NullPointer, &["A is NULL"]),
        (
            "gemm_misaligned",
            S::Misaligned,
            &["C = ", "aligned to 8 bytes"],
        ),
        (
            "gemm_lda",
            S::BadParameter,
            &["A (lda)", "leading dimension 2 is smaller than 3"],
        ),
        ("before_thread", S::NullPointer, &["lowp_isa_detected:"]),
        ("thread_null", S::NullPointer, &["lowp_isa_available:"]),
        // The main thread's message, unchanged by the other thread's failure.
        ("after_thread", S::Ok, &["lowp_isa_detected:"]),
    ];
    for &(tag, status, needles) in expected {
        let prefix = format!("error {tag} ");
        let found: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        assert_eq!(found.len(), 1, "one line for {tag}");
        let (code, message) = found[0].split_once(' ').unwrap_or((found[0], ""));
        assert_eq!(
            code.parse::<i32>().unwrap(),
            status as i32,
            "{tag}: {message}"
        );
        for needle in needles {
            assert!(
                message.contains(needle),
                "{tag}: {message:?} lacks {needle:?}"
            );
        }
    }
    assert!(
        lines.contains(&"bad_enum plan_is_null 1"),
        "*plan is NULL after a failure"
    );
    assert!(
        lines.contains(&"packed_b_short null 1"),
        "*packed is NULL after a failure"
    );
}
