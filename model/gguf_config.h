// Gemma3Config <-> GGUF metadata, following llama.cpp (the producer of
// nearly every Gemma 3 GGUF). Quirks, each with where it comes from in
// llama.cpp's source:
//
// 1. query_pre_attn_scalar is not stored. src/models/gemma3.cpp,
//    llama_model_gemma3::load_arch_hparams: the attention scale is
//    1/sqrt(n_embd / n_head) when block_count == 62 (27B), else
//    1/sqrt(key_length). We derive query_pre_attn_scalar the same way, so a
//    config whose scalar follows neither rule cannot be written to GGUF.
// 2. The layer pattern is not stored by the converter
//    (conversion/gemma.py, Gemma3Model.set_gguf_parameters writes only
//    attention.sliding_window). llama.cpp derives it in
//    llama_model_base::load_swa_pattern(ml, 6) + llama_hparams::set_swa_pattern:
//    layer il is sliding iff il % n < n - 1, n from the optional key
//    attention.sliding_window_pattern (u32 n, or a bool array, true =
//    sliding), default 6; no sliding_window (or 0) means every layer global.
//    We write the bool array only when the layers differ from pattern 6.
// 3. RoPE: rope.freq_base is the global theta (conversion/base.py,
//    TextModel.set_gguf_parameters takes rope_parameters["full_attention"]),
//    rope.freq_base_swa the sliding one; both default to 10000
//    (src/llama-model.cpp load_hparams; src/llama-hparams.h).
//    rope.scaling.type "linear" + rope.scaling.factor (old key:
//    rope.scale_linear) scale the global layers only: llama.cpp's
//    rope_freq_scale_train_swa stays 1.
// 4. vocab_size is the number of tokenizer.ggml.tokens (llama.cpp's n_vocab),
//    and token_embd has that many rows: Gemma3Model.modify_tensors trims
//    embed_tokens to the tokenizer's size. For Google's multimodal
//    checkpoints (text_config without vocab_size) that is tokenizer.model's
//    262144, dropping HF's 64 extra rows 262144..262207 (262144 is
//    <image_soft_token>, whose embedding is never looked up). Hence a GGUF
//    4B has vocab_size 262144 where its HF folder says 262208.
// 5. tie_word_embeddings: true unless the file has output.weight (llama.cpp
//    duplicates token_embd as the LM head when output.weight is absent).
// 6. tokenizer.ggml.eos_token_id is tokenizer_config.json's eos_token, for
//    Gemma 3 <end_of_turn> (106) (gguf-py/gguf/vocab.py, SpecialVocab._load
//    reads tokenizer_config before config.json), where config.json says
//    eos_token_id [1, 106]. When the token list has Gemma's pieces we take
//    eos_token_id = <eos> and eos_token_ids = <eos>, the file's eos, eot
//    and <end_of_turn>, and the image token ids from <image_soft_token>,
//    <start_of_image> and <end_of_image> (GGUF has no keys for them), so
//    both sources give the same config.
//
// The vision tower comes from a separate mmproj GGUF (general.architecture
// "clip", clip.projector_type "gemma3"; conversion/gemma.py,
// Gemma3VisionModel): clip.vision.{image_size, patch_size, embedding_length,
// feed_forward_length, block_count, projection_dim, image_mean, image_std},
// clip.vision.attention.{head_count, layer_norm_epsilon}.
// mm_tokens_per_image = (image_size / patch_size / n_merge)^2 with n_merge =
// clip.vision.projector.scale_factor, default 4 (tools/mtmd/clip.cpp,
// clip_model_loader::load_hparams, case PROJECTOR_TYPE_GEMMA3; the converter
// writes the key only when it is not 4). Its tensors keep the Hugging Face
// layouts (ne is the PyTorch shape reversed, nothing transposed):
// v.patch_embd.weight [v_hidden, 3, patch, patch] in F32 (MmprojModel.
// tensor_force_quant), v.position_embd.weight [n_patches, v_hidden] in F32
// (Gemma3VisionModel.tensor_force_quant, ".embeddings."),
// mm.input_projection.weight [v_hidden, hidden] forced to F16 (same
// function; transposed at run time by tools/mtmd/models/siglip.cpp), renamed
// from mm_input_projection_weight (Gemma3VisionModel.filter_tensors), and
// mm.soft_emb_norm stored as 1 + w (Gemma3VisionModel.modify_tensors) while
// the SigLIP LayerNorms are stored as is. Text tensors have no Q/K
// permutation (Gemma 3 uses NeoX RoPE: llama_model_rope_type in
// src/llama-model.cpp; only LlamaModel.permute in conversion/llama.py
// permutes).
#pragma once

#include "common/status.h"
#include "model/gemma3_config.h"
#include "model/gguf.h"

namespace unicorn {

// Text config from gemma3.* metadata. `token_embd_rows` (rows of
// token_embd.weight, -1 if unknown) gives vocab_size when the file has no
// token list. The result is not yet validated (ValidateConfig).
StatusOr<Gemma3Config> TextConfigFromGguf(const GgufMetadata& md, int64_t token_embd_rows);

// Adds the vision tower described by an mmproj's clip.* metadata.
Status VisionConfigFromGguf(const GgufMetadata& md, Gemma3Config* c);

// The inverse, with the key types llama.cpp reads (u32 counts, f32 floats).
// Fails for what GGUF cannot express (see quirk 1; a sliding-layer RoPE
// scale; RoPE thetas or eps that are not finite).
// With `unicorn_extensions`, a config GGUF cannot express for llama.cpp
// (query_pre_attn_scalar other than llama.cpp's derivation) is written as the
// extension key unicorn.query_pre_attn_scalar (f32), which
// TextConfigFromGguf honours and llama.cpp ignores (it computes its own);
// without, it is an error.
Status TextConfigToGguf(const Gemma3Config& c, GgufMetadata* md, bool unicorn_extensions = false);
Status VisionConfigToGguf(const Gemma3Config& c, GgufMetadata* md);

// query_pre_attn_scalar as llama.cpp derives it (quirk 1).
double LlamaCppQueryPreAttnScalar(int block_count, int hidden_size, int num_heads, int head_dim);

}  // namespace unicorn
