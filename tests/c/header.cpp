// The header as C++17 with warnings as errors: declarations are extern "C", the enums and
// structs are valid C++, and the static library links into a C++ program.
#include "lowp.h"

#include <cstdio>

int main() {
    const char *name = nullptr;
    if (lowp_isa_name(LOWP_ISA_SCALAR, &name) != LOWP_OK) {
        std::printf("lowp_isa_name failed: %s\n", lowp_last_error_message());
        return 1;
    }
    lowp_embedding_bag_spec spec{};
    lowp_bags bags{};
    (void)bags;
    if (lowp_embedding_bag_spec_init(&spec, LOWP_FORMAT_Q4, 64) != LOWP_OK) return 1;
    std::printf("lowp %s %s\n", lowp_version(), name);
    return 0;
}
