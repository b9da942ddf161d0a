// The internal tensor names of a Gemma 3 model: llama.cpp's GGUF names, so a
// GGUF file maps one to one, and Hugging Face names are translated onto them
// (model/name_map.*). Shapes are row-major, outermost first (PyTorch order);
// a projection W is [out, in] and computes y = W x.
//
// Text (per layer i):                    shape
//   token_embd.weight                    [vocab, hidden]          (tied LM head)
//   output_norm.weight                   [hidden]                 final RMSNorm
//   blk.i.attn_norm.weight               [hidden]                 input_layernorm
//   blk.i.attn_q.weight                  [n_heads*head_dim, hidden]
//   blk.i.attn_k.weight                  [n_kv_heads*head_dim, hidden]
//   blk.i.attn_v.weight                  [n_kv_heads*head_dim, hidden]
//   blk.i.attn_q_norm.weight             [head_dim]
//   blk.i.attn_k_norm.weight             [head_dim]
//   blk.i.attn_output.weight             [hidden, n_heads*head_dim]
//   blk.i.post_attention_norm.weight     [hidden]
//   blk.i.ffn_norm.weight                [hidden]                 pre_feedforward_layernorm
//   blk.i.ffn_gate.weight                [intermediate, hidden]
//   blk.i.ffn_up.weight                  [intermediate, hidden]
//   blk.i.ffn_down.weight                [hidden, intermediate]
//   blk.i.post_ffw_norm.weight           [hidden]                 post_feedforward_layernorm
//
// Vision tower (SigLIP) and projector (per layer i):
//   v.patch_embd.weight                  [v_hidden, 3, patch, patch]
//   v.patch_embd.bias                    [v_hidden]
//   v.position_embd.weight               [n_patches, v_hidden]
//   v.blk.i.ln1.weight / .bias           [v_hidden]               LayerNorm before attention
//   v.blk.i.attn_q.weight / .bias        [v_hidden, v_hidden] / [v_hidden]   (also attn_k, attn_v)
//   v.blk.i.attn_out.weight / .bias      [v_hidden, v_hidden] / [v_hidden]
//   v.blk.i.ln2.weight / .bias           [v_hidden]               LayerNorm before the MLP
//   v.blk.i.ffn_up.weight / .bias        [v_intermediate, v_hidden] / [v_intermediate]   (fc1)
//   v.blk.i.ffn_down.weight / .bias      [v_hidden, v_intermediate] / [v_hidden]         (fc2)
//   v.post_ln.weight / .bias             [v_hidden]
//   mm.soft_emb_norm.weight              [v_hidden]               RMSNorm after pooling
//   mm.input_projection.weight           [hidden, v_hidden]       (HF stores it [v_hidden, hidden])
//
// Norm convention: every Gemma RMSNorm weight (text norms, q/k norms,
// mm.soft_emb_norm) is held as Hugging Face stores it, w, and applied as
// x * (1 + w). GGUF files store 1 + w; the GGUF reader converts. SigLIP
// LayerNorms are plain (x - mean) / std * w + b.
#pragma once

#include <string>

namespace unicorn::names {

inline std::string Blk(int layer, const char* what) {
  return "blk." + std::to_string(layer) + "." + what + ".weight";
}
inline std::string VBlk(int layer, const char* what, const char* kind = "weight") {
  return "v.blk." + std::to_string(layer) + "." + what + "." + kind;
}

inline constexpr char kTokenEmbd[] = "token_embd.weight";
inline constexpr char kOutputNorm[] = "output_norm.weight";

}  // namespace unicorn::names
