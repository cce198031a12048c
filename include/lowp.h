/*
 * lowp.h: the C ABI of lowp, low-precision CPU kernels for recommendation models.
 *
 * Plain C99; usable from C++ (the declarations are extern "C"). Link the static library
 * with `-llowp -lpthread -ldl -lm` (see the README's "Linking from C" section).
 *
 * Conventions for every function below:
 *  - Every function except lowp_version() and lowp_last_error_message() returns a
 *    lowp_status. On failure, lowp_last_error_message() describes the failure, starting
 *    with the function's name, and names what was wrong and where (parameter, bag,
 *    position, row). Outputs are unspecified after a failure unless stated otherwise.
 *  - A pointer with a length may be NULL only when that length is 0. A NULL pointer with a
 *    non-zero length is LOWP_ERR_NULL_POINTER and is never dereferenced.
 *  - Lengths are in elements of the pointer's type unless called "bytes". A typed pointer
 *    that is not aligned to its element type (a `const float *` not 4-aligned, an
 *    `int64_t *` not 8-aligned) is LOWP_ERR_MISALIGNED, never dereferenced. Byte pointers
 *    (`uint8_t *` tables) need no alignment.
 *  - Sizes that overflow size_t, or a buffer of more than PTRDIFF_MAX bytes, are
 *    LOWP_ERR_SIZE_OVERFLOW.
 *  - Fields and parameters that hold an enum value are int32_t; an unknown value is
 *    LOWP_ERR_BAD_PARAMETER.
 *  - Every function is thread-safe: it touches only its arguments (and the calling thread's
 *    error message). Outputs must not overlap inputs.
 *  - No Rust panic crosses this boundary and bad input never aborts the process: every
 *    call runs under a panic guard, and an internal bug is reported as LOWP_ERR_PANIC.
 *  - Results are bit-identical on every instruction-set level (and to FBGEMM where
 *    FBGEMM is exact).
 */
#ifndef LOWP_H
#define LOWP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status and errors */

/** The result of every call. */
typedef enum lowp_status {
    LOWP_OK = 0,
    LOWP_ERR_NULL_POINTER = 1,       /**< a pointer that must not be NULL was NULL */
    LOWP_ERR_MISALIGNED = 2,         /**< a typed pointer is not aligned to its element type */
    LOWP_ERR_SIZE_OVERFLOW = 3,      /**< a size computation overflows */
    LOWP_ERR_BAD_PARAMETER = 4,      /**< a parameter or enum value is invalid */
    LOWP_ERR_INDEX_OUT_OF_RANGE = 5, /**< an index is outside the table */
    LOWP_ERR_BAD_BAGS = 6,           /**< offsets or lengths are inconsistent */
    LOWP_ERR_WEIGHT_COUNT = 7,       /**< a weight array has the wrong number of entries */
    LOWP_ERR_INPUT_TOO_SMALL = 8,    /**< an input buffer is smaller than its shape */
    LOWP_ERR_OUTPUT_TOO_SMALL = 9,   /**< an output buffer is smaller than the result */
    LOWP_ERR_TABLE_SIZE = 10,        /**< a table's byte length is not rows x row bytes */
    LOWP_ERR_UNSUPPORTED_ISA = 11,   /**< the requested (or LOWP_ISA) level cannot run here */
    LOWP_ERR_UNREPRESENTABLE_ROW = 12, /**< a row does not fit the quantized format */
    LOWP_ERR_ALIASING = 13,          /**< an output overlaps an input */
    LOWP_ERR_PANIC = 14              /**< an internal lowp bug; outputs are unspecified */
} lowp_status;

/**
 * The version of the library, "MAJOR.MINOR.PATCH". Returns a static string: never NULL,
 * never freed. Thread-safe.
 */
const char *lowp_version(void);

/**
 * A human-readable description of the calling thread's last failed lowp call, or "" if
 * none failed yet. Never NULL. The string belongs to lowp and stays valid until the next
 * failing lowp call on the same thread; copy it to keep it. Successful calls leave it
 * unchanged. Each thread has its own message.
 */
const char *lowp_last_error_message(void);

/* ---------------------------------------------------------------- instruction sets */

/** An instruction-set level (values also used as bit positions by lowp_isa_available). */
typedef enum lowp_isa {
    LOWP_ISA_AUTO = -1,       /**< let lowp choose: the detected level, capped by LOWP_ISA */
    LOWP_ISA_SCALAR = 0,      /**< portable code, always available */
    LOWP_ISA_AVX2 = 1,        /**< x86-64 AVX2 + FMA + F16C */
    LOWP_ISA_AVX512 = 2,      /**< x86-64 AVX-512 F/BW/VL/DQ */
    LOWP_ISA_AVX512VNNI = 3,  /**< AVX-512 + VNNI */
    LOWP_ISA_NEON = 4,        /**< aarch64 Advanced SIMD */
    LOWP_ISA_NEONDOT = 5,     /**< NEON + dot product */
    LOWP_ISA_AMX = 6          /**< AVX-512 VNNI + AMX-TILE/AMX-INT8, if the OS grants the tile data */
} lowp_isa;

/**
 * Stores in *mask the set of levels this CPU runs: bit (1u << level) for each lowp_isa
 * level. Not affected by the LOWP_ISA environment variable.
 * mask: must not be NULL.
 */
lowp_status lowp_isa_available(uint32_t *mask);

/**
 * Stores in *isa the highest level this CPU runs (a lowp_isa), ignoring LOWP_ISA.
 * isa: must not be NULL.
 */
lowp_status lowp_isa_detected(int32_t *isa);

/**
 * Stores in *isa the level automatic dispatch (LOWP_ISA_AUTO) uses: the detected level
 * capped by the LOWP_ISA environment variable (read once per process). An unknown LOWP_ISA
 * value is LOWP_ERR_BAD_PARAMETER, a level this CPU lacks LOWP_ERR_UNSUPPORTED_ISA; every
 * LOWP_ISA_AUTO call then fails the same way.
 * isa: must not be NULL.
 */
lowp_status lowp_isa_chosen(int32_t *isa);

/**
 * Stores in *name the level's name as LOWP_ISA spells it ("scalar", "avx2", "avx512",
 * "avx512vnni", "neon", "neondot", "amx"): a static string, never freed.
 * isa: a level (not LOWP_ISA_AUTO). name: must not be NULL.
 */
lowp_status lowp_isa_name(int32_t isa, const char **name);

/* ---------------------------------------------------------------- table formats */

/**
 * The element format of a table's rows. Rows are little-endian, row-major, unpadded, and
 * the quantized layouts are FBGEMM's fused row-wise formats byte for byte.
 */
typedef enum lowp_format {
    LOWP_FORMAT_F32 = 0,  /**< dim floats per row */
    LOWP_FORMAT_F16 = 1,  /**< dim IEEE binary16 per row */
    LOWP_FORMAT_BF16 = 2, /**< dim bfloat16 per row */
    LOWP_FORMAT_Q8 = 3,   /**< dim uint8 codes, float scale, float bias */
    LOWP_FORMAT_Q4 = 4,   /**< ceil(dim/2) bytes of 4-bit codes, f16 scale, f16 bias */
    LOWP_FORMAT_Q2 = 5    /**< ceil(dim/4) bytes of 2-bit codes, f16 scale, f16 bias */
} lowp_format;

/** A float element type (16-bit types are passed as uint16_t bit patterns). */
typedef enum lowp_float_type {
    LOWP_FLOAT_F32 = 0,  /**< float */
    LOWP_FLOAT_F16 = 1,  /**< IEEE binary16, rounded to nearest even on output */
    LOWP_FLOAT_BF16 = 2  /**< bfloat16, rounded to nearest even on output, NaN kept */
} lowp_float_type;

/**
 * Stores in *bytes the size of a table of `rows` rows of `dim` elements in `format`.
 * bytes: must not be NULL.
 */
lowp_status lowp_table_bytes(int32_t format, size_t rows, size_t dim, size_t *bytes);

/* ---------------------------------------------------------------- embedding bags */

/** The integer type of indices, offsets or lengths. */
typedef enum lowp_index_type {
    LOWP_INDEX_I32 = 0, /**< int32_t */
    LOWP_INDEX_I64 = 1  /**< int64_t */
} lowp_index_type;

/** Which weights a batch carries. */
typedef enum lowp_weights_kind {
    LOWP_WEIGHTS_NONE = 0,      /**< unweighted */
    LOWP_WEIGHTS_PER_INDEX = 1, /**< one float per index */
    LOWP_WEIGHTS_POSITIONAL = 2 /**< one float per position in a bag (at least the longest bag) */
} lowp_weights_kind;

/** How a bag's rows are combined. */
typedef enum lowp_pooling {
    LOWP_POOLING_SUM = 0, /**< the (weighted) sum */
    LOWP_POOLING_MEAN = 1 /**< the sum times the float reciprocal of the length; empty bags give 0 */
} lowp_pooling;

/** Which cache level a software prefetch of table rows fills. */
typedef enum lowp_prefetch_hint {
    LOWP_PREFETCH_L1 = 0,
    LOWP_PREFETCH_L2 = 1,
    LOWP_PREFETCH_L3 = 2,
    LOWP_PREFETCH_NON_TEMPORAL = 3
} lowp_prefetch_hint;

/** What lowp_bags.bounds holds. */
typedef enum lowp_bounds_kind {
    LOWP_BOUNDS_OFFSETS = 0,              /**< B + 1 offsets: bag b is indices[offsets[b] .. offsets[b+1]] */
    LOWP_BOUNDS_OFFSETS_WITHOUT_LAST = 1, /**< B offsets; the last bag ends at num_indices */
    LOWP_BOUNDS_LENGTHS = 2               /**< B lengths, bags back to back from index 0 */
} lowp_bounds_kind;

/**
 * What an embedding-bag plan computes. Fill it with lowp_embedding_bag_spec_init, then
 * change fields. Enum fields hold the named enum's values.
 */
typedef struct lowp_embedding_bag_spec {
    size_t dim;               /**< elements per row and per result */
    size_t prefetch_distance; /**< entries ahead to prefetch rows; 0 = no prefetch */
    int32_t format;           /**< lowp_format of the table */
    int32_t index_type;       /**< lowp_index_type of the indices */
    int32_t weights;          /**< lowp_weights_kind */
    int32_t pooling;          /**< lowp_pooling */
    int32_t output;           /**< lowp_float_type of the results */
    int32_t prefetch_hint;    /**< lowp_prefetch_hint */
    int32_t isa;              /**< lowp_isa, or LOWP_ISA_AUTO */
} lowp_embedding_bag_spec;

/**
 * One batch of bags, borrowed for the duration of a lowp_embedding_bag_run call.
 * Offsets need not start at 0 nor end at num_indices: a window of B + 1 entries of a larger
 * offsets array over the whole indices array is a valid sub-batch (how an engine splits a
 * batch over threads without copying).
 */
typedef struct lowp_bags {
    const void *indices;  /**< num_indices indices of the plan's index_type */
    size_t num_indices;
    const void *bounds;   /**< num_bounds offsets or lengths, of type bounds_type */
    size_t num_bounds;
    const float *weights; /**< num_weights weights; NULL with 0 for an unweighted plan */
    size_t num_weights;
    int32_t bounds_kind;  /**< lowp_bounds_kind */
    int32_t bounds_type;  /**< lowp_index_type of bounds */
} lowp_bags;

/** An embedding-bag plan: a kernel resolved once for one spec. Opaque. */
typedef struct lowp_embedding_bag lowp_embedding_bag;

/**
 * Fills *spec with defaults for `format` rows of `dim` elements: unweighted sums, int64
 * indices, float results, prefetch into L2 64 entries ahead, LOWP_ISA_AUTO.
 * spec: must not be NULL; written entirely.
 */
lowp_status lowp_embedding_bag_spec_init(lowp_embedding_bag_spec *spec, int32_t format,
                                         size_t dim);

/**
 * Resolves a plan for *spec and stores it in *plan. The plan is owned by the caller and
 * freed with lowp_embedding_bag_destroy. *spec is copied; it may be freed afterwards.
 * LOWP_ERR_UNSUPPORTED_ISA if spec->isa names a level this CPU lacks (or LOWP_ISA is
 * invalid with LOWP_ISA_AUTO). On failure *plan is NULL (if plan is not NULL).
 * spec, plan: must not be NULL.
 */
lowp_status lowp_embedding_bag_create(const lowp_embedding_bag_spec *spec,
                                      lowp_embedding_bag **plan);

/**
 * Stores the plan's spec in *spec and the level of the kernel it resolved to (a lowp_isa)
 * in *isa. plan: must not be NULL. spec, isa: each may be NULL (then not written).
 */
lowp_status lowp_embedding_bag_info(const lowp_embedding_bag *plan,
                                    lowp_embedding_bag_spec *spec, int32_t *isa);

/**
 * Frees a plan. plan: NULL (a no-op) or a plan from lowp_embedding_bag_create not yet
 * destroyed. Not thread-safe with respect to other calls using the same plan.
 */
lowp_status lowp_embedding_bag_destroy(lowp_embedding_bag *plan);

/**
 * Sums (or averages) each bag of *bags over the table into out: the result of bag b is
 * written to out[b * out_stride .. b * out_stride + dim), in the plan's output type
 * (float, or uint16_t bit patterns for f16/bf16). Elements between rows are not written.
 *
 * plan: a live plan; may be used by many threads at once.
 * table: `table_bytes` bytes of `rows` rows in the plan's format and dim (no alignment
 *   needed); table_bytes must equal rows x row bytes (LOWP_ERR_TABLE_SIZE).
 * bags: must not be NULL; its arrays as documented on lowp_bags. Indices, offsets and
 *   lengths are all checked: LOWP_ERR_BAD_BAGS for bad offsets/lengths,
 *   LOWP_ERR_WEIGHT_COUNT for a wrong number of weights, LOWP_ERR_INDEX_OUT_OF_RANGE for an
 *   index outside 0..rows (the message names the bag, the position and the index; bags
 *   before it hold their results, later ones are unspecified).
 * out: out_len elements, aligned to the output type; out_stride >= dim, and out_len must
 *   reach the last bag's row (LOWP_ERR_OUTPUT_TOO_SMALL).
 */
lowp_status lowp_embedding_bag_run(const lowp_embedding_bag *plan, const uint8_t *table,
                                   size_t table_bytes, size_t rows, const lowp_bags *bags,
                                   void *out, size_t out_len, size_t out_stride);

/* ---------------------------------------------------------------- quantizers */

/**
 * Quantizes rows x dim values (row-major, input_type LOWP_FLOAT_F32 or LOWP_FLOAT_F16) into
 * a table in `format` (LOWP_FORMAT_Q8, Q4 or Q2), byte-identical to FBGEMM's row-wise
 * quantizers. input: input_len >= rows x dim values (LOWP_ERR_INPUT_TOO_SMALL). out:
 * exactly lowp_table_bytes(format, rows, dim) bytes (LOWP_ERR_TABLE_SIZE otherwise).
 * LOWP_ERR_UNREPRESENTABLE_ROW (naming the row) if a 4- or 2-bit row's scale or bias does
 * not fit f16. isa: a level or LOWP_ISA_AUTO.
 */
lowp_status lowp_quantize(int32_t format, int32_t input_type, const void *input,
                          size_t input_len, size_t rows, size_t dim, uint8_t *out,
                          size_t out_bytes, int32_t isa);

/** How lowp_quantize_rows chooses each row's clipping range. */
typedef enum lowp_clipping {
    LOWP_CLIPPING_MIN_MAX = 0, /**< the row's min and max: FBGEMM's quantizers, as lowp_quantize */
    LOWP_CLIPPING_GREEDY = 1   /**< FBGEMM's greedy n-bit search for the smallest squared
                                    error (LOWP_FORMAT_Q4 and Q2 only; scalar code) */
} lowp_clipping;

/**
 * Quantizes rows row_begin .. row_end (exclusive) of a table of dim-element rows.
 * input: the whole table's values, row-major, input_type LOWP_FLOAT_F32 or F16, input_len
 *   >= row_end x dim; only the rows in the range are read.
 * out: exactly lowp_table_bytes(format, row_end - row_begin, dim) bytes: those rows of the
 *   quantized table (the table's bytes from row_begin x row bytes).
 * Rows are independent: calls over disjoint ranges, from any threads, that cover the table
 * produce the bytes of one whole-table call. Errors name rows by their index in the table.
 * clipping: a lowp_clipping. isa: a level or LOWP_ISA_AUTO.
 */
lowp_status lowp_quantize_rows(int32_t format, int32_t clipping, int32_t input_type,
                               const void *input, size_t input_len, size_t dim,
                               size_t row_begin, size_t row_end, uint8_t *out,
                               size_t out_bytes, int32_t isa);

/**
 * Dequantizes every row of a quantized table (`table_bytes` bytes = rows x row bytes) into
 * rows x dim values of out_type, row-major. out: out_len >= rows x dim elements
 * (LOWP_ERR_OUTPUT_TOO_SMALL), aligned to out_type. isa: a level or LOWP_ISA_AUTO.
 */
lowp_status lowp_dequantize(int32_t format, const uint8_t *table, size_t table_bytes,
                            size_t rows, size_t dim, int32_t out_type, void *out,
                            size_t out_len, int32_t isa);

/* ---------------------------------------------------------------- i64 GEMM */

/** Matrix storage order, CBLAS's values. */
typedef enum lowp_layout { LOWP_ROW_MAJOR = 101, LOWP_COL_MAJOR = 102 } lowp_layout;
/** Whether an operand is used transposed, CBLAS's values. */
typedef enum lowp_transpose { LOWP_NO_TRANS = 111, LOWP_TRANS = 112 } lowp_transpose;

/**
 * C = op(A) op(B) (accumulate = 0) or C += op(A) op(B) (accumulate = 1), every operation
 * wrapping modulo 2^64, with op(A) m x k, op(B) k x n and C m x n, stored as in CBLAS's
 * cblas_?gemm: layout is LOWP_ROW_MAJOR or LOWP_COL_MAJOR, trans_a / trans_b LOWP_NO_TRANS
 * or LOWP_TRANS, and lda / ldb / ldc at least the stored row (row-major) or column
 * (column-major) length, and at least 1. As in CBLAS, buffers carry no length: each must
 * hold its matrix as the dimensions and leading dimension describe. a, b, c: 8-aligned;
 * NULL only when the matrix is empty. C must not overlap A or B (LOWP_ERR_ALIASING, checked
 * on the address ranges before anything is read).
 * isa: a level or LOWP_ISA_AUTO.
 */
lowp_status lowp_gemm_i64(int32_t layout, int32_t trans_a, int32_t trans_b, size_t m,
                          size_t n, size_t k, const int64_t *a, size_t lda, const int64_t *b,
                          size_t ldb, int32_t accumulate, int64_t *c, size_t ldc,
                          int32_t isa);

/* ---------------------------------------------------------------- u8 x i8 GEMM */

/** How the i8 weights given to lowp_packed_b_create are laid out. */
typedef enum lowp_weight_layout {
    LOWP_WEIGHTS_K_BY_N = 0, /**< k x n row-major: b[kk * n + j] */
    LOWP_WEIGHTS_N_BY_K = 1  /**< n x k row-major: b[j * k + kk] (PyTorch's out x in) */
} lowp_weight_layout;

/** i8 weights packed once for lowp_gemm_u8i8_packed. Opaque, immutable once created. */
typedef struct lowp_packed_b lowp_packed_b;

/**
 * Packs the k x n weights b (b_len >= k x n values, laid out as `layout`) with weight zero
 * points b_zero_points (num_b_zero_points = 1: one for the whole tensor; n: one per output
 * column) for the kernel of level `isa` (or LOWP_ISA_AUTO), and stores the packing in
 * *packed. The packing owns a copy: b and b_zero_points may be freed afterwards. The caller
 * owns *packed and frees it with lowp_packed_b_destroy. On failure *packed is NULL.
 * b, b_zero_points: may be NULL only with a zero length. packed: must not be NULL.
 */
lowp_status lowp_packed_b_create(const int8_t *b, size_t b_len, size_t k, size_t n,
                                 int32_t layout, const int32_t *b_zero_points,
                                 size_t num_b_zero_points, int32_t isa,
                                 lowp_packed_b **packed);

/**
 * Stores the packing's depth k, columns n and the level of the kernel it was packed for
 * (which every call runs). packed: must not be NULL. k, n, isa: each may be NULL.
 */
lowp_status lowp_packed_b_info(const lowp_packed_b *packed, size_t *k, size_t *n,
                               int32_t *isa);

/**
 * Frees a packing. packed: NULL (a no-op) or a live packing, no longer used by any thread.
 */
lowp_status lowp_packed_b_destroy(lowp_packed_b *packed);

/** What the u8 x i8 GEMM writes for each exact result raw = sum_k (A - za)(B - zb). */
typedef enum lowp_stage_kind {
    LOWP_STAGE_RAW_I32 = 0,       /**< raw, as int32_t */
    LOWP_STAGE_REQUANTIZE_U8 = 1, /**< requantized to uint8_t */
    LOWP_STAGE_REQUANTIZE_I8 = 2, /**< requantized to int8_t */
    LOWP_STAGE_DEQUANTIZE = 3     /**< f32(raw) * (a_scale * scales[g]) + bias[j], to float */
} lowp_stage_kind;

/** The bias of an output stage. */
typedef enum lowp_bias_kind {
    LOWP_BIAS_NONE = 0,
    LOWP_BIAS_I32 = 1, /**< requantize: bias_i32[j] added to raw (wrapping) before scaling */
    LOWP_BIAS_F32 = 2  /**< requantize: bias_f32[j] / act_times_w_scale[g] added after the
                            conversion to float (FBGEMM's float bias); dequantize: bias_f32[j] */
} lowp_bias_kind;

/**
 * An output stage. Requantize: (raw + bias) * scales[g], rounded half to even, plus
 * zero_point (within the output type), clamped to the type (and from below to zero_point
 * with relu). Dequantize: see LOWP_STAGE_DEQUANTIZE, then max(0, .) with relu. Arrays of
 * "1 or n" values are per tensor (1) or per output column (n); bias arrays hold n values.
 * Pointers a stage does not use are not read and may be NULL.
 */
typedef struct lowp_output_stage {
    const float *scales;            /**< requantize: multipliers; dequantize: weight scales */
    size_t num_scales;              /**< 1 or n */
    const int32_t *bias_i32;        /**< n values for LOWP_BIAS_I32 */
    const float *bias_f32;          /**< n values for LOWP_BIAS_F32 */
    const float *act_times_w_scale; /**< requantize with LOWP_BIAS_F32 */
    size_t num_act_times_w_scale;   /**< 1 or n */
    int32_t kind;                   /**< lowp_stage_kind */
    int32_t bias_kind;              /**< lowp_bias_kind */
    int32_t zero_point;             /**< requantize: the output zero point */
    int32_t relu;                   /**< nonzero: fused ReLU */
    float a_scale;                  /**< dequantize: the activation scale */
} lowp_output_stage;

/**
 * out[i * out_stride + j] = stage((A - a_zero_point)(B - zb)) for the m x k u8 activations
 * A (rows a_stride >= k apart, a_len >= (m - 1) a_stride + k codes) and the packed weights.
 * Runs the kernel the packing was made for; bit-identical to lowp's reference (and FBGEMM).
 * out: out_len elements of the stage's output type (int32_t, uint8_t, int8_t or float,
 * aligned to it), out_stride >= n, reaching row m - 1. packed, stage: must not be NULL.
 * Thread-safe: one packing may serve many threads at once.
 */
lowp_status lowp_gemm_u8i8_packed(size_t m, const uint8_t *a, size_t a_len, size_t a_stride,
                                  uint8_t a_zero_point, const lowp_packed_b *packed,
                                  const lowp_output_stage *stage, void *out, size_t out_len,
                                  size_t out_stride);

/**
 * One block of lowp_gemm_u8i8_packed, for engines that bring their own threads: rows
 * row_begin .. row_end and columns col_begin .. col_end (exclusive, within n) of the result,
 * element (i, j) written to out[(i - row_begin) * out_stride + (j - col_begin)]. A is indexed
 * by the global row (a holds rows from 0) and the stage's per-column arrays by the global
 * column (all n values). Threads calling this with disjoint blocks that cover the result
 * compute exactly one lowp_gemm_u8i8_packed call, without synchronisation. Otherwise as
 * lowp_gemm_u8i8_packed; a decreasing range or columns beyond n is LOWP_ERR_BAD_PARAMETER.
 */
lowp_status lowp_gemm_u8i8_packed_block(size_t row_begin, size_t row_end, size_t col_begin,
                                        size_t col_end, const uint8_t *a, size_t a_len,
                                        size_t a_stride, uint8_t a_zero_point,
                                        const lowp_packed_b *packed,
                                        const lowp_output_stage *stage, void *out,
                                        size_t out_len, size_t out_stride);

/* ---------------------------------------------------------------- feature interaction */

/** A borrowed array of vectors' elements. */
typedef struct lowp_vectors {
    const void *data; /**< len elements of type (uint16_t bit patterns for bf16) */
    size_t len;
    int32_t type;     /**< lowp_float_type: LOWP_FLOAT_F32 or LOWP_FLOAT_BF16 */
} lowp_vectors;

/** How the embeddings of an interaction are laid out. */
typedef enum lowp_embeddings_layout {
    LOWP_EMBEDDINGS_BLOCK = 0,   /**< one array: sample b's embedding f at ((b (F-1) + f) dim) */
    LOWP_EMBEDDINGS_SEPARATE = 1 /**< F - 1 arrays (one per table) of batch x dim */
} lowp_embeddings_layout;

/** The shape and options of an interaction. Fill with lowp_interaction_options_init. */
typedef struct lowp_interaction_options {
    size_t batch;      /**< samples (B) */
    size_t features;   /**< vectors per sample (F): the dense one and F - 1 embeddings; >= 1 */
    size_t dim;        /**< elements per vector (d) */
    size_t pad_to;     /**< output rows are zero-padded to a multiple of this; >= 1 */
    size_t out_stride; /**< elements between output rows; 0 = the padded row width */
    int32_t diagonal;  /**< nonzero: include the self-interactions Z[i][i] */
    int32_t isa;       /**< lowp_isa, or LOWP_ISA_AUTO */
} lowp_interaction_options;

/**
 * Fills *options for batch samples of `features` vectors of `dim` elements: no diagonal,
 * pad_to 1, out_stride 0, LOWP_ISA_AUTO. options: must not be NULL.
 */
lowp_status lowp_interaction_options_init(lowp_interaction_options *options, size_t batch,
                                          size_t features, size_t dim);

/**
 * DLRM's feature interaction: for each sample b, writes to out[b * row stride ..] the dense
 * vector (d values), then the dot products Z[i][j] = v[i] . v[j] for rows i = 0 .. F-1 and
 * columns j < i (j <= i with the diagonal), then zeros up to a multiple of pad_to, in
 * out_type. v[0] is dense[b], v[f] sample b's embedding f - 1.
 * options, dense: must not be NULL; dense holds batch x dim values.
 * embeddings: num_embeddings lowp_vectors: exactly 1 for LOWP_EMBEDDINGS_BLOCK (batch x
 *   (F - 1) x dim values), F - 1 for LOWP_EMBEDDINGS_SEPARATE (batch x dim each); may be
 *   NULL when num_embeddings is 0.
 * out: out_len elements of out_type (aligned to it), reaching the last sample's padded row.
 * Thread-safe; every buffer is borrowed for the call only.
 */
lowp_status lowp_interaction(const lowp_interaction_options *options, const lowp_vectors *dense,
                             int32_t embeddings_layout, const lowp_vectors *embeddings,
                             size_t num_embeddings, int32_t out_type, void *out,
                             size_t out_len);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* LOWP_H */
