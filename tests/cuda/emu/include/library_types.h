/*
 * tests/cuda/emu/include/library_types.h — the CUDA emulator's data-type enum (values as
 * CUDA's library_types.h), shared by the cuBLAS stand-in.
 */
#ifndef IGEMU_LIBRARY_TYPES_H
#define IGEMU_LIBRARY_TYPES_H

typedef enum cudaDataType_t {
    CUDA_R_32F = 0,
    CUDA_R_64F = 1,
    CUDA_R_16F = 2,
    CUDA_R_8I = 3,
    CUDA_R_32I = 10,
    CUDA_R_16BF = 14,
} cudaDataType_t;
typedef cudaDataType_t cudaDataType;

#endif
