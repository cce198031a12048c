/*
 * Calls every function of include/lowp.h and prints what it got, one fact per line, for
 * tests/c_abi.rs to compare with the Rust side: struct layouts, enum values, every
 * embedding-bag configuration, every quantizer and dequantizer, the i64 GEMM in each CBLAS
 * form, and bad-input calls with their statuses and messages.
 *
 * Line formats (all numbers decimal except results, which are hexadecimal bit patterns):
 *   layout <struct> size <n>
 *   offset <struct> <field> <n>
 *   enum <NAME> <value>
 *   <kind> <key words...> : <hex> <hex> ...
 *   error <tag> <status> <message>
 * A failed call that should have succeeded prints "FAIL ..." and the program exits 1.
 */
#include "lowp.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 10
#define DIM 13
#define NUM_BAGS 4
#define NUM_INDICES 9
#define OUT_STRIDE (DIM + 3)
#define OUT_LEN (NUM_BAGS * OUT_STRIDE)
#define GEMM_M 3
#define GEMM_N 5
#define GEMM_K 4

/* The generator tests/c_abi.rs mirrors: a 32-bit LCG, reseeded per array. */
static uint32_t rng_state;
static void rng_seed(uint32_t seed) { rng_state = seed; }
static uint32_t rng_u32(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state;
}
/* Exact multiples of 2^-20 in [-8, 8). */
static float rng_f32(void) {
    return (float)((int32_t)(rng_u32() >> 8) - (1 << 23)) / (float)(1 << 20);
}
/* Finite f16 / bf16 bit patterns of moderate magnitude. */
static uint16_t rng_f16(void) {
    uint32_t r = rng_u32();
    return (uint16_t)(((r >> 16) & 0x83ffu) | ((10u + r % 10u) << 10));
}
static uint16_t rng_bf16(void) {
    uint32_t r = rng_u32();
    return (uint16_t)(((r >> 16) & 0x807fu) | ((120u + r % 10u) << 7));
}
static int64_t rng_i64(void) {
    uint64_t hi = rng_u32();
    return (int64_t)((hi << 32) | rng_u32());
}

static void check(lowp_status status, const char *what) {
    if (status != LOWP_OK) {
        printf("FAIL %s: status %d: %s\n", what, (int)status, lowp_last_error_message());
        exit(1);
    }
}

static void expect_error(const char *tag, lowp_status status) {
    printf("error %s %d %s\n", tag, (int)status, lowp_last_error_message());
}

static void print_hex32(const uint32_t *v, size_t n) {
    for (size_t i = 0; i < n; i++) printf(" %08x", (unsigned)v[i]);
    printf("\n");
}
static void print_hex16(const uint16_t *v, size_t n) {
    for (size_t i = 0; i < n; i++) printf(" %04x", (unsigned)v[i]);
    printf("\n");
}
static void print_hex8(const uint8_t *v, size_t n) {
    for (size_t i = 0; i < n; i++) printf(" %02x", (unsigned)v[i]);
    printf("\n");
}

#define LAYOUT(T) printf("layout " #T " size %zu\n", sizeof(T))
#define OFFSET(T, f) printf("offset " #T " " #f " %zu\n", offsetof(T, f))
#define ENUM(E) printf("enum " #E " %d\n", (int)(E))

static void layouts(void) {
    LAYOUT(lowp_embedding_bag_spec);
    OFFSET(lowp_embedding_bag_spec, dim);
    OFFSET(lowp_embedding_bag_spec, prefetch_distance);
    OFFSET(lowp_embedding_bag_spec, format);
    OFFSET(lowp_embedding_bag_spec, index_type);
    OFFSET(lowp_embedding_bag_spec, weights);
    OFFSET(lowp_embedding_bag_spec, pooling);
    OFFSET(lowp_embedding_bag_spec, output);
    OFFSET(lowp_embedding_bag_spec, prefetch_hint);
    OFFSET(lowp_embedding_bag_spec, isa);
    LAYOUT(lowp_bags);
    OFFSET(lowp_bags, indices);
    OFFSET(lowp_bags, num_indices);
    OFFSET(lowp_bags, bounds);
    OFFSET(lowp_bags, num_bounds);
    OFFSET(lowp_bags, weights);
    OFFSET(lowp_bags, num_weights);
    OFFSET(lowp_bags, bounds_kind);
    OFFSET(lowp_bags, bounds_type);
    LAYOUT(lowp_vectors);
    OFFSET(lowp_vectors, data);
    OFFSET(lowp_vectors, len);
    OFFSET(lowp_vectors, type);
    LAYOUT(lowp_interaction_options);
    OFFSET(lowp_interaction_options, batch);
    OFFSET(lowp_interaction_options, features);
    OFFSET(lowp_interaction_options, dim);
    OFFSET(lowp_interaction_options, pad_to);
    OFFSET(lowp_interaction_options, out_stride);
    OFFSET(lowp_interaction_options, diagonal);
    OFFSET(lowp_interaction_options, isa);
    LAYOUT(lowp_output_stage);
    OFFSET(lowp_output_stage, scales);
    OFFSET(lowp_output_stage, num_scales);
    OFFSET(lowp_output_stage, bias_i32);
    OFFSET(lowp_output_stage, bias_f32);
    OFFSET(lowp_output_stage, act_times_w_scale);
    OFFSET(lowp_output_stage, num_act_times_w_scale);
    OFFSET(lowp_output_stage, kind);
    OFFSET(lowp_output_stage, bias_kind);
    OFFSET(lowp_output_stage, zero_point);
    OFFSET(lowp_output_stage, relu);
    OFFSET(lowp_output_stage, a_scale);
    LAYOUT(lowp_status);

    ENUM(LOWP_OK);
    ENUM(LOWP_ERR_NULL_POINTER);
    ENUM(LOWP_ERR_MISALIGNED);
    ENUM(LOWP_ERR_SIZE_OVERFLOW);
    ENUM(LOWP_ERR_BAD_PARAMETER);
    ENUM(LOWP_ERR_INDEX_OUT_OF_RANGE);
    ENUM(LOWP_ERR_BAD_BAGS);
    ENUM(LOWP_ERR_WEIGHT_COUNT);
    ENUM(LOWP_ERR_INPUT_TOO_SMALL);
    ENUM(LOWP_ERR_OUTPUT_TOO_SMALL);
    ENUM(LOWP_ERR_TABLE_SIZE);
    ENUM(LOWP_ERR_UNSUPPORTED_ISA);
    ENUM(LOWP_ERR_UNREPRESENTABLE_ROW);
    ENUM(LOWP_ERR_ALIASING);
    ENUM(LOWP_ERR_PANIC);
    ENUM(LOWP_ISA_AUTO);
    ENUM(LOWP_FORMAT_F32);
    ENUM(LOWP_FORMAT_F16);
    ENUM(LOWP_FORMAT_BF16);
    ENUM(LOWP_FORMAT_Q8);
    ENUM(LOWP_FORMAT_Q4);
    ENUM(LOWP_FORMAT_Q2);
    ENUM(LOWP_FLOAT_F32);
    ENUM(LOWP_FLOAT_F16);
    ENUM(LOWP_FLOAT_BF16);
    ENUM(LOWP_INDEX_I32);
    ENUM(LOWP_INDEX_I64);
    ENUM(LOWP_WEIGHTS_NONE);
    ENUM(LOWP_WEIGHTS_PER_INDEX);
    ENUM(LOWP_WEIGHTS_POSITIONAL);
    ENUM(LOWP_POOLING_SUM);
    ENUM(LOWP_POOLING_MEAN);
    ENUM(LOWP_PREFETCH_L1);
    ENUM(LOWP_PREFETCH_L2);
    ENUM(LOWP_PREFETCH_L3);
    ENUM(LOWP_PREFETCH_NON_TEMPORAL);
    ENUM(LOWP_BOUNDS_OFFSETS);
    ENUM(LOWP_BOUNDS_OFFSETS_WITHOUT_LAST);
    ENUM(LOWP_BOUNDS_LENGTHS);
    ENUM(LOWP_CLIPPING_MIN_MAX);
    ENUM(LOWP_CLIPPING_GREEDY);
    ENUM(LOWP_EMBEDDINGS_BLOCK);
    ENUM(LOWP_EMBEDDINGS_SEPARATE);
    ENUM(LOWP_WEIGHTS_K_BY_N);
    ENUM(LOWP_WEIGHTS_N_BY_K);
    ENUM(LOWP_STAGE_RAW_I32);
    ENUM(LOWP_STAGE_REQUANTIZE_U8);
    ENUM(LOWP_STAGE_REQUANTIZE_I8);
    ENUM(LOWP_STAGE_DEQUANTIZE);
    ENUM(LOWP_BIAS_NONE);
    ENUM(LOWP_BIAS_I32);
    ENUM(LOWP_BIAS_F32);
    ENUM(LOWP_ROW_MAJOR);
    ENUM(LOWP_COL_MAJOR);
    ENUM(LOWP_NO_TRANS);
    ENUM(LOWP_TRANS);
}

static void isa_info(void) {
    uint32_t mask = 0;
    int32_t detected = -2, chosen = -2;
    check(lowp_isa_available(&mask), "lowp_isa_available");
    check(lowp_isa_detected(&detected), "lowp_isa_detected");
    printf("version %s\n", lowp_version());
    printf("isa available %u detected %d\n", (unsigned)mask, (int)detected);
    lowp_status status = lowp_isa_chosen(&chosen);
    if (status == LOWP_OK) {
        printf("isa chosen %d\n", (int)chosen);
    } else {
        expect_error("isa_chosen", status);
    }
    for (int32_t isa = LOWP_ISA_SCALAR; isa <= LOWP_ISA_AMX; isa++) {
        const char *name = NULL;
        check(lowp_isa_name(isa, &name), "lowp_isa_name");
        printf("isa name %d %s\n", (int)isa, name);
    }
}

/* Tables in every format; the table bytes start one byte past an aligned address, since
 * tables need no alignment. */
static uint8_t table_storage[LOWP_FORMAT_Q2 + 1][ROWS * DIM * 4 + 1];
static float values_f32[ROWS * DIM];
static uint16_t values_f16[ROWS * DIM];

static void make_tables(size_t bytes[LOWP_FORMAT_Q2 + 1]) {
    rng_seed(1);
    for (size_t i = 0; i < ROWS * DIM; i++) values_f32[i] = rng_f32();
    rng_seed(2);
    for (size_t i = 0; i < ROWS * DIM; i++) values_f16[i] = rng_f16();
    uint16_t bf16[ROWS * DIM];
    rng_seed(3);
    for (size_t i = 0; i < ROWS * DIM; i++) bf16[i] = rng_bf16();
    for (int32_t f = LOWP_FORMAT_F32; f <= LOWP_FORMAT_Q2; f++) {
        check(lowp_table_bytes(f, ROWS, DIM, &bytes[f]), "lowp_table_bytes");
        printf("table_bytes %d %zu\n", (int)f, bytes[f]);
    }
    memcpy(table_storage[LOWP_FORMAT_F32] + 1, values_f32, sizeof values_f32);
    memcpy(table_storage[LOWP_FORMAT_F16] + 1, values_f16, sizeof values_f16);
    memcpy(table_storage[LOWP_FORMAT_BF16] + 1, bf16, sizeof bf16);
    for (int32_t f = LOWP_FORMAT_Q8; f <= LOWP_FORMAT_Q2; f++) {
        check(lowp_quantize(f, LOWP_FLOAT_F32, values_f32, ROWS * DIM, ROWS, DIM,
                            table_storage[f] + 1, bytes[f], LOWP_ISA_AUTO),
              "lowp_quantize");
    }
}

static void quantizers(const size_t bytes[LOWP_FORMAT_Q2 + 1]) {
    uint8_t table[ROWS * DIM * 4];
    for (int32_t f = LOWP_FORMAT_Q8; f <= LOWP_FORMAT_Q2; f++) {
        printf("quantize %d f32 :", (int)f);
        print_hex8(table_storage[f] + 1, bytes[f]);
        check(lowp_quantize(f, LOWP_FLOAT_F16, values_f16, ROWS * DIM, ROWS, DIM, table,
                            bytes[f], LOWP_ISA_AUTO),
              "lowp_quantize f16");
        printf("quantize %d f16 :", (int)f);
        print_hex8(table, bytes[f]);
        /* Two row ranges, 0..4 and 4..ROWS, make one table. */
        for (int32_t clip = LOWP_CLIPPING_MIN_MAX; clip <= LOWP_CLIPPING_GREEDY; clip++) {
            if (clip == LOWP_CLIPPING_GREEDY && f == LOWP_FORMAT_Q8) continue;
            size_t head = 0;
            check(lowp_table_bytes(f, 4, DIM, &head), "lowp_table_bytes");
            check(lowp_quantize_rows(f, clip, LOWP_FLOAT_F32, values_f32, ROWS * DIM, DIM, 0, 4,
                                     table, head, LOWP_ISA_AUTO),
                  "lowp_quantize_rows head");
            check(lowp_quantize_rows(f, clip, LOWP_FLOAT_F32, values_f32, ROWS * DIM, DIM, 4,
                                     ROWS, table + head, bytes[f] - head, LOWP_ISA_AUTO),
                  "lowp_quantize_rows tail");
            printf("quantize_rows %d %d :", (int)f, (int)clip);
            print_hex8(table, bytes[f]);
        }
        for (int32_t t = LOWP_FLOAT_F32; t <= LOWP_FLOAT_BF16; t++) {
            uint32_t out32[ROWS * DIM];
            uint16_t out16[ROWS * DIM];
            void *out = t == LOWP_FLOAT_F32 ? (void *)out32 : (void *)out16;
            check(lowp_dequantize(f, table_storage[f] + 1, bytes[f], ROWS, DIM, t, out,
                                  ROWS * DIM, LOWP_ISA_AUTO),
                  "lowp_dequantize");
            printf("dequantize %d %d :", (int)f, (int)t);
            if (t == LOWP_FLOAT_F32) print_hex32(out32, ROWS * DIM);
            else print_hex16(out16, ROWS * DIM);
        }
    }
}

/* The batch: bags of 3, 0, 2 and 4 entries. */
static const int64_t indices64[NUM_INDICES] = {7, 0, 9, 3, 3, 1, 8, 2, 5};
static const int64_t offsets64[NUM_BAGS + 1] = {0, 3, 3, 5, 9};
static const int64_t lengths64[NUM_BAGS] = {3, 0, 2, 4};

static void embedding_bags(const size_t bytes[LOWP_FORMAT_Q2 + 1]) {
    int32_t indices32[NUM_INDICES], offsets32[NUM_BAGS + 1], lengths32[NUM_BAGS];
    for (int i = 0; i < NUM_INDICES; i++) indices32[i] = (int32_t)indices64[i];
    for (int i = 0; i <= NUM_BAGS; i++) offsets32[i] = (int32_t)offsets64[i];
    for (int i = 0; i < NUM_BAGS; i++) lengths32[i] = (int32_t)lengths64[i];
    float weights[NUM_INDICES];
    rng_seed(4);
    for (int i = 0; i < NUM_INDICES; i++) weights[i] = rng_f32();

    for (int32_t f = LOWP_FORMAT_F32; f <= LOWP_FORMAT_Q2; f++)
    for (int32_t it = LOWP_INDEX_I32; it <= LOWP_INDEX_I64; it++)
    for (int32_t w = LOWP_WEIGHTS_NONE; w <= LOWP_WEIGHTS_POSITIONAL; w++)
    for (int32_t p = LOWP_POOLING_SUM; p <= LOWP_POOLING_MEAN; p++)
    for (int32_t o = LOWP_FLOAT_F32; o <= LOWP_FLOAT_BF16; o++) {
        lowp_embedding_bag_spec spec, back;
        check(lowp_embedding_bag_spec_init(&spec, f, DIM), "lowp_embedding_bag_spec_init");
        spec.index_type = it;
        spec.weights = w;
        spec.pooling = p;
        spec.output = o;
        lowp_embedding_bag *plan = NULL;
        check(lowp_embedding_bag_create(&spec, &plan), "lowp_embedding_bag_create");
        int32_t isa = -2;
        check(lowp_embedding_bag_info(plan, &back, &isa), "lowp_embedding_bag_info");
        if (back.dim != spec.dim || back.format != spec.format ||
            back.index_type != it || back.weights != w || back.pooling != p ||
            back.output != o || back.prefetch_hint != spec.prefetch_hint ||
            back.prefetch_distance != spec.prefetch_distance || back.isa != spec.isa) {
            printf("FAIL lowp_embedding_bag_info returned another spec\n");
            exit(1);
        }
        for (int32_t bt = LOWP_INDEX_I32; bt <= LOWP_INDEX_I64; bt++)
        for (int32_t bk = LOWP_BOUNDS_OFFSETS; bk <= LOWP_BOUNDS_LENGTHS; bk++) {
            lowp_bags bags;
            bags.indices = it == LOWP_INDEX_I32 ? (const void *)indices32 : (const void *)indices64;
            bags.num_indices = NUM_INDICES;
            if (bk == LOWP_BOUNDS_LENGTHS) {
                bags.bounds = bt == LOWP_INDEX_I32 ? (const void *)lengths32 : (const void *)lengths64;
                bags.num_bounds = NUM_BAGS;
            } else {
                bags.bounds = bt == LOWP_INDEX_I32 ? (const void *)offsets32 : (const void *)offsets64;
                bags.num_bounds = bk == LOWP_BOUNDS_OFFSETS ? NUM_BAGS + 1 : NUM_BAGS;
            }
            bags.weights = w == LOWP_WEIGHTS_NONE ? NULL : weights;
            bags.num_weights = w == LOWP_WEIGHTS_NONE ? 0 : w == LOWP_WEIGHTS_PER_INDEX ? NUM_INDICES : 4;
            bags.bounds_kind = bk;
            bags.bounds_type = bt;
            uint32_t out32[OUT_LEN];
            uint16_t out16[OUT_LEN];
            memset(out32, 0xa5, sizeof out32);
            memset(out16, 0xa5, sizeof out16);
            void *out = o == LOWP_FLOAT_F32 ? (void *)out32 : (void *)out16;
            check(lowp_embedding_bag_run(plan, table_storage[f] + 1, bytes[f], ROWS, &bags,
                                         out, OUT_LEN, OUT_STRIDE),
                  "lowp_embedding_bag_run");
            printf("bag %d %d %d %d %d %d %d isa %d :", (int)f, (int)it, (int)w, (int)p,
                   (int)o, (int)bt, (int)bk, (int)isa);
            if (o == LOWP_FLOAT_F32) print_hex32(out32, OUT_LEN);
            else print_hex16(out16, OUT_LEN);
        }
        check(lowp_embedding_bag_destroy(plan), "lowp_embedding_bag_destroy");
    }
}

static void gemms(void) {
    int64_t a[64], b[64], c[64];
    for (int32_t layout = LOWP_ROW_MAJOR; layout <= LOWP_COL_MAJOR; layout++)
    for (int32_t ta = LOWP_NO_TRANS; ta <= LOWP_TRANS; ta++)
    for (int32_t tb = LOWP_NO_TRANS; tb <= LOWP_TRANS; tb++)
    for (int32_t acc = 0; acc <= 1; acc++) {
        int row_major = layout == LOWP_ROW_MAJOR;
        /* Leading dimensions one more than the stored row or column length. */
        size_t lda = (row_major != (ta == LOWP_TRANS) ? GEMM_K : GEMM_M) + 1;
        size_t ldb = (row_major != (tb == LOWP_TRANS) ? GEMM_N : GEMM_K) + 1;
        size_t ldc = (row_major ? GEMM_N : GEMM_M) + 1;
        rng_seed(5);
        for (int i = 0; i < 64; i++) a[i] = rng_i64();
        rng_seed(6);
        for (int i = 0; i < 64; i++) b[i] = rng_i64();
        rng_seed(7);
        for (int i = 0; i < 64; i++) c[i] = rng_i64();
        check(lowp_gemm_i64(layout, ta, tb, GEMM_M, GEMM_N, GEMM_K, a, lda, b, ldb, acc, c,
                            ldc, LOWP_ISA_AUTO),
              "lowp_gemm_i64");
        printf("gemm_i64 %d %d %d %d %zu %zu %zu :", (int)layout, (int)ta, (int)tb, (int)acc,
               lda, ldb, ldc);
        for (int i = 0; i < 64; i++) printf(" %016llx", (unsigned long long)(uint64_t)c[i]);
        printf("\n");
    }
}

#define QM 5
#define QN 19
#define QK 23
#define Q_A_STRIDE (QK + 3)
#define Q_OUT_STRIDE (QN + 2)

/* Exact small positive scales: (1 .. 1000) / 2^shift. */
static float rng_scale(int shift) { return (float)(rng_u32() % 1000u + 1u) / (float)(1 << shift); }

/* The u8 x i8 GEMM over packed weights: both weight layouts, per-tensor and per-column
 * weight zero points, and five output stages. */
static void gemms_u8i8(void) {
    uint8_t a[QM * Q_A_STRIDE];
    int8_t b[QK * QN];
    int32_t zps[QN], bias_i32[QN];
    float mult[QN], bias_f32[QN], act[QN], b_scale[QN];
    rng_seed(12);
    for (int i = 0; i < QM * Q_A_STRIDE; i++) a[i] = (uint8_t)(rng_u32() >> 24);
    rng_seed(13);
    for (int i = 0; i < QK * QN; i++) b[i] = (int8_t)(uint8_t)(rng_u32() >> 24);
    rng_seed(14);
    for (int j = 0; j < QN; j++) {
        zps[j] = (int32_t)(rng_u32() % 11u) - 5;
        bias_i32[j] = (int32_t)(rng_u32() % 20001u) - 10000;
        mult[j] = rng_scale(18);
        bias_f32[j] = rng_f32() * 64.0f;
        act[j] = rng_scale(16);
        b_scale[j] = rng_scale(16);
    }
    for (int32_t layout = LOWP_WEIGHTS_K_BY_N; layout <= LOWP_WEIGHTS_N_BY_K; layout++)
    for (int per_col = 0; per_col <= 1; per_col++) {
        /* The same weights in the other layout: b is k x n; its transpose is n x k. */
        int8_t weights[QK * QN];
        for (int kk = 0; kk < QK; kk++)
            for (int j = 0; j < QN; j++) {
                if (layout == LOWP_WEIGHTS_K_BY_N) weights[kk * QN + j] = b[kk * QN + j];
                else weights[j * QK + kk] = b[kk * QN + j];
            }
        int32_t tensor_zp = -2;
        lowp_packed_b *packed = NULL;
        check(lowp_packed_b_create(weights, QK * QN, QK, QN, layout,
                                   per_col ? zps : &tensor_zp, per_col ? QN : 1, LOWP_ISA_AUTO,
                                   &packed),
              "lowp_packed_b_create");
        size_t k = 0, n = 0;
        int32_t isa = -2;
        check(lowp_packed_b_info(packed, &k, &n, &isa), "lowp_packed_b_info");
        if (k != QK || n != QN) {
            printf("FAIL lowp_packed_b_info: k %zu n %zu\n", k, n);
            exit(1);
        }
        for (int stage_no = 0; stage_no < 5; stage_no++) {
            lowp_output_stage stage;
            memset(&stage, 0, sizeof stage);
            size_t cols = per_col ? QN : 1;
            switch (stage_no) {
            case 0: stage.kind = LOWP_STAGE_RAW_I32; break;
            case 1: /* u8, no bias, fused ReLU */
                stage.kind = LOWP_STAGE_REQUANTIZE_U8; stage.bias_kind = LOWP_BIAS_NONE;
                stage.scales = mult; stage.num_scales = cols; stage.zero_point = 7; stage.relu = 1;
                break;
            case 2: /* i8, i32 bias */
                stage.kind = LOWP_STAGE_REQUANTIZE_I8; stage.bias_kind = LOWP_BIAS_I32;
                stage.bias_i32 = bias_i32; stage.scales = mult; stage.num_scales = cols;
                stage.zero_point = -3;
                break;
            case 3: /* u8, FBGEMM's float bias */
                stage.kind = LOWP_STAGE_REQUANTIZE_U8; stage.bias_kind = LOWP_BIAS_F32;
                stage.bias_f32 = bias_f32; stage.act_times_w_scale = act;
                stage.num_act_times_w_scale = cols; stage.scales = mult; stage.num_scales = cols;
                stage.zero_point = 128;
                break;
            default: /* float with bias and ReLU */
                stage.kind = LOWP_STAGE_DEQUANTIZE; stage.bias_kind = LOWP_BIAS_F32;
                stage.bias_f32 = bias_f32; stage.a_scale = 1.0f / 128.0f; stage.scales = b_scale;
                stage.num_scales = cols; stage.relu = 1;
                break;
            }
            uint32_t out32[QM * Q_OUT_STRIDE];
            uint8_t out8[QM * Q_OUT_STRIDE];
            memset(out32, 0xa5, sizeof out32);
            memset(out8, 0xa5, sizeof out8);
            int wide = stage.kind == LOWP_STAGE_RAW_I32 || stage.kind == LOWP_STAGE_DEQUANTIZE;
            check(lowp_gemm_u8i8_packed(QM, a, sizeof a, Q_A_STRIDE, 3, packed, &stage,
                                        wide ? (void *)out32 : (void *)out8, QM * Q_OUT_STRIDE,
                                        Q_OUT_STRIDE),
                  "lowp_gemm_u8i8_packed");
            printf("gemm_u8i8 %d %d %d isa %d :", (int)layout, per_col, stage_no, (int)isa);
            if (wide) print_hex32(out32, QM * Q_OUT_STRIDE);
            else print_hex8(out8, QM * Q_OUT_STRIDE);
            /* The same result from four blocks: rows 0..2 and 2..QM, columns 0..16 and
             * 16..QN, each written at its place in a fresh buffer. */
            memset(out32, 0xa5, sizeof out32);
            memset(out8, 0xa5, sizeof out8);
            static const size_t row_cut[3] = {0, 2, QM}, col_cut[3] = {0, 16, QN};
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 2; c++) {
                    size_t at = row_cut[r] * Q_OUT_STRIDE + col_cut[c];
                    void *part = wide ? (void *)(out32 + at) : (void *)(out8 + at);
                    check(lowp_gemm_u8i8_packed_block(row_cut[r], row_cut[r + 1], col_cut[c],
                                                      col_cut[c + 1], a, sizeof a, Q_A_STRIDE, 3,
                                                      packed, &stage, part,
                                                      QM * Q_OUT_STRIDE - at, Q_OUT_STRIDE),
                          "lowp_gemm_u8i8_packed_block");
                }
            printf("gemm_u8i8_block %d %d %d isa %d :", (int)layout, per_col, stage_no, (int)isa);
            if (wide) print_hex32(out32, QM * Q_OUT_STRIDE);
            else print_hex8(out8, QM * Q_OUT_STRIDE);
        }
        if (layout == LOWP_WEIGHTS_N_BY_K && per_col) {
            lowp_output_stage bad;
            memset(&bad, 0, sizeof bad);
            bad.kind = LOWP_STAGE_REQUANTIZE_U8;
            bad.scales = mult;
            bad.num_scales = 2;
            uint8_t out8[QM * Q_OUT_STRIDE];
            expect_error("u8i8_scales", lowp_gemm_u8i8_packed(QM, a, sizeof a, Q_A_STRIDE, 3,
                                                              packed, &bad, out8,
                                                              QM * Q_OUT_STRIDE, Q_OUT_STRIDE));
            bad.num_scales = QN;
            expect_error("u8i8_short_a", lowp_gemm_u8i8_packed(QM, a, 40, Q_A_STRIDE, 3, packed,
                                                               &bad, out8, QM * Q_OUT_STRIDE,
                                                               Q_OUT_STRIDE));
        }
        check(lowp_packed_b_destroy(packed), "lowp_packed_b_destroy");
    }
    lowp_packed_b *packed = (lowp_packed_b *)&zps;
    expect_error("packed_b_short", lowp_packed_b_create(b, 10, QK, QN, LOWP_WEIGHTS_K_BY_N,
                                                        zps, 1, LOWP_ISA_AUTO, &packed));
    printf("packed_b_short null %d\n", packed == NULL);
}

#define IB 3
#define IF 4
#define ID 7
#define I_STRIDE 22

static void interactions(void) {
    float dense32[IB * ID], emb32[IB * (IF - 1) * ID];
    uint16_t dense16[IB * ID], emb16[IB * (IF - 1) * ID];
    rng_seed(8);
    for (int i = 0; i < IB * ID; i++) dense32[i] = rng_f32();
    rng_seed(9);
    for (int i = 0; i < IB * ID; i++) dense16[i] = rng_bf16();
    rng_seed(10);
    for (int i = 0; i < IB * (IF - 1) * ID; i++) emb32[i] = rng_f32();
    rng_seed(11);
    for (int i = 0; i < IB * (IF - 1) * ID; i++) emb16[i] = rng_bf16();
    for (int32_t diag = 0; diag <= 1; diag++)
    for (int32_t layout = LOWP_EMBEDDINGS_BLOCK; layout <= LOWP_EMBEDDINGS_SEPARATE; layout++)
    for (int32_t dt = LOWP_FLOAT_F32; dt <= LOWP_FLOAT_BF16; dt += 2)
    for (int32_t et = LOWP_FLOAT_F32; et <= LOWP_FLOAT_BF16; et += 2)
    for (int32_t o = LOWP_FLOAT_F32; o <= LOWP_FLOAT_BF16; o++) {
        lowp_interaction_options options;
        check(lowp_interaction_options_init(&options, IB, IF, ID), "options_init");
        options.diagonal = diag;
        options.pad_to = 4;
        options.out_stride = I_STRIDE;
        lowp_vectors dense = {dt == LOWP_FLOAT_F32 ? (const void *)dense32 : (const void *)dense16,
                              IB * ID, dt};
        const void *emb = et == LOWP_FLOAT_F32 ? (const void *)emb32 : (const void *)emb16;
        size_t esize = et == LOWP_FLOAT_F32 ? 4 : 2;
        lowp_vectors embeddings[IF - 1];
        size_t count = layout == LOWP_EMBEDDINGS_BLOCK ? 1 : IF - 1;
        for (size_t f = 0; f < count; f++) {
            /* Separate blocks are consecutive batch x dim parts of the same data. */
            embeddings[f].data = (const char *)emb + f * IB * ID * esize;
            embeddings[f].len = layout == LOWP_EMBEDDINGS_BLOCK ? IB * (IF - 1) * ID : IB * ID;
            embeddings[f].type = et;
        }
        uint32_t out32[IB * I_STRIDE];
        uint16_t out16[IB * I_STRIDE];
        memset(out32, 0xa5, sizeof out32);
        memset(out16, 0xa5, sizeof out16);
        void *out = o == LOWP_FLOAT_F32 ? (void *)out32 : (void *)out16;
        check(lowp_interaction(&options, &dense, layout, embeddings, count, o, out,
                               IB * I_STRIDE),
              "lowp_interaction");
        printf("interaction %d %d %d %d %d :", (int)diag, (int)layout, (int)dt, (int)et, (int)o);
        if (o == LOWP_FLOAT_F32) print_hex32(out32, IB * I_STRIDE);
        else print_hex16(out16, IB * I_STRIDE);
    }
    lowp_interaction_options options;
    check(lowp_interaction_options_init(&options, IB, IF, ID), "options_init");
    lowp_vectors dense = {dense32, IB * ID, LOWP_FLOAT_F16};
    float out[IB * I_STRIDE];
    expect_error("interaction_f16",
                 lowp_interaction(&options, &dense, LOWP_EMBEDDINGS_BLOCK, NULL, 0,
                                  LOWP_FLOAT_F32, out, IB * I_STRIDE));
    dense.type = LOWP_FLOAT_F32;
    expect_error("interaction_null_embeddings",
                 lowp_interaction(&options, &dense, LOWP_EMBEDDINGS_SEPARATE, NULL, IF - 1,
                                  LOWP_FLOAT_F32, out, IB * I_STRIDE));
}

static void *fail_in_thread(void *arg) {
    (void)arg;
    /* Another thread's failure must not touch the main thread's message. */
    lowp_status status = lowp_isa_available(NULL);
    printf("error thread_null %d %s\n", (int)status, lowp_last_error_message());
    return NULL;
}

static void bad_inputs(const size_t bytes[LOWP_FORMAT_Q2 + 1]) {
    lowp_embedding_bag_spec spec;
    lowp_embedding_bag *plan = NULL;
    check(lowp_embedding_bag_spec_init(&spec, LOWP_FORMAT_F32, DIM), "spec_init");
    spec.weights = LOWP_WEIGHTS_PER_INDEX;
    check(lowp_embedding_bag_create(&spec, &plan), "create");

    /* Bag 2 (lengths 3, 0, 2, 4 as offsets) holds 99 at its position 1. */
    int64_t bad_indices[NUM_INDICES] = {7, 0, 9, 3, 99, 1, 8, 2, 5};
    float weights_storage[NUM_INDICES + 1] = {0};
    float out[OUT_LEN];
    lowp_bags bags = {bad_indices, NUM_INDICES, offsets64, NUM_BAGS + 1, weights_storage,
                      NUM_INDICES, LOWP_BOUNDS_OFFSETS, LOWP_INDEX_I64};
    expect_error("index_out_of_range",
                 lowp_embedding_bag_run(plan, table_storage[0] + 1, bytes[0], ROWS, &bags, out,
                                        OUT_LEN, OUT_STRIDE));

    lowp_bags null_indices = bags;
    null_indices.indices = NULL;
    expect_error("null_indices",
                 lowp_embedding_bag_run(plan, table_storage[0] + 1, bytes[0], ROWS,
                                        &null_indices, out, OUT_LEN, OUT_STRIDE));
    expect_error("null_bags",
                 lowp_embedding_bag_run(plan, table_storage[0] + 1, bytes[0], ROWS, NULL, out,
                                        OUT_LEN, OUT_STRIDE));

    lowp_bags misaligned = bags;
    misaligned.indices = indices64;
    misaligned.weights = (const float *)((const char *)weights_storage + 1);
    expect_error("misaligned_weights",
                 lowp_embedding_bag_run(plan, table_storage[0] + 1, bytes[0], ROWS,
                                        &misaligned, out, OUT_LEN, OUT_STRIDE));

    lowp_bags decreasing = bags;
    const int64_t bad_offsets[NUM_BAGS + 1] = {0, 3, 2, 5, 9};
    decreasing.indices = indices64;
    decreasing.bounds = bad_offsets;
    expect_error("offsets_decreasing",
                 lowp_embedding_bag_run(plan, table_storage[0] + 1, bytes[0], ROWS,
                                        &decreasing, out, OUT_LEN, OUT_STRIDE));

    lowp_bags good = bags;
    good.indices = indices64;
    expect_error("out_too_small",
                 lowp_embedding_bag_run(plan, table_storage[0] + 1, bytes[0], ROWS, &good, out,
                                        OUT_LEN - 4, OUT_STRIDE));
    expect_error("table_size",
                 lowp_embedding_bag_run(plan, table_storage[0] + 1, bytes[0] - 1, ROWS, &good,
                                        out, OUT_LEN, OUT_STRIDE));
    check(lowp_embedding_bag_destroy(plan), "destroy");
    check(lowp_embedding_bag_destroy(NULL), "destroy NULL");

    spec.pooling = 7;
    plan = (lowp_embedding_bag *)&spec; /* must be overwritten with NULL */
    expect_error("bad_enum", lowp_embedding_bag_create(&spec, &plan));
    printf("bad_enum plan_is_null %d\n", plan == NULL);
    spec.pooling = LOWP_POOLING_SUM;
#if defined(__x86_64__)
    spec.isa = LOWP_ISA_NEON;
#else
    spec.isa = LOWP_ISA_AVX2;
#endif
    expect_error("foreign_isa", lowp_embedding_bag_create(&spec, &plan));
    expect_error("null_plan_out", lowp_embedding_bag_create(&spec, NULL));

    expect_error("null_mask", lowp_isa_available(NULL));
    expect_error("isa_name_auto", lowp_isa_name(LOWP_ISA_AUTO, NULL));
    size_t size = 0;
    expect_error("size_overflow", lowp_table_bytes(LOWP_FORMAT_F32, SIZE_MAX, 2, &size));
    expect_error("quantize_float_format",
                 lowp_quantize(LOWP_FORMAT_F16, LOWP_FLOAT_F32, values_f32, ROWS * DIM, ROWS,
                               DIM, table_storage[1], bytes[1], LOWP_ISA_AUTO));
    expect_error("quantize_out_size",
                 lowp_quantize(LOWP_FORMAT_Q8, LOWP_FLOAT_F32, values_f32, ROWS * DIM, ROWS,
                               DIM, table_storage[3], bytes[3] - 1, LOWP_ISA_AUTO));
    expect_error("quantize_rows_reversed",
                 lowp_quantize_rows(LOWP_FORMAT_Q8, LOWP_CLIPPING_MIN_MAX, LOWP_FLOAT_F32,
                                    values_f32, ROWS * DIM, DIM, 5, 4, table_storage[3], 0,
                                    LOWP_ISA_AUTO));
    expect_error("dequantize_out_small",
                 lowp_dequantize(LOWP_FORMAT_Q4, table_storage[4] + 1, bytes[4], ROWS, DIM,
                                 LOWP_FLOAT_F32, out, 8, LOWP_ISA_AUTO));

    int64_t m[64] = {0};
    expect_error("gemm_alias",
                 lowp_gemm_i64(LOWP_ROW_MAJOR, LOWP_NO_TRANS, LOWP_NO_TRANS, 2, 2, 2, m, 2,
                               m + 32, 2, 0, m + 2, 2, LOWP_ISA_AUTO));
    expect_error("gemm_null",
                 lowp_gemm_i64(LOWP_ROW_MAJOR, LOWP_NO_TRANS, LOWP_NO_TRANS, 2, 2, 2, NULL, 2,
                               m + 32, 2, 0, m + 8, 2, LOWP_ISA_AUTO));
    expect_error("gemm_misaligned",
                 lowp_gemm_i64(LOWP_ROW_MAJOR, LOWP_NO_TRANS, LOWP_NO_TRANS, 2, 2, 2, m, 2,
                               m + 32, 2, 0, (int64_t *)((char *)(m + 8) + 4), 2,
                               LOWP_ISA_AUTO));
    expect_error("gemm_lda",
                 lowp_gemm_i64(LOWP_ROW_MAJOR, LOWP_NO_TRANS, LOWP_NO_TRANS, 2, 2, 3, m, 2,
                               m + 32, 2, 0, m + 8, 2, LOWP_ISA_AUTO));
    /* An empty product needs no buffers. */
    check(lowp_gemm_i64(LOWP_COL_MAJOR, LOWP_TRANS, LOWP_NO_TRANS, 0, 0, 0, NULL, 1, NULL, 1,
                        0, NULL, 1, LOWP_ISA_AUTO),
          "empty gemm");

    /* The message survives a failure on another thread. */
    expect_error("before_thread", lowp_isa_detected(NULL));
    pthread_t thread;
    if (pthread_create(&thread, NULL, fail_in_thread, NULL) != 0 ||
        pthread_join(thread, NULL) != 0) {
        printf("FAIL pthread\n");
        exit(1);
    }
    printf("error after_thread 0 %s\n", lowp_last_error_message());
}

int main(void) {
    size_t bytes[LOWP_FORMAT_Q2 + 1];
    layouts();
    isa_info();
    make_tables(bytes);
    quantizers(bytes);
    embedding_bags(bytes);
    gemms();
    gemms_u8i8();
    interactions();
    bad_inputs(bytes);
    printf("done\n");
    return 0;
}
