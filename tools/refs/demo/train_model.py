#!/usr/bin/env python3
"""Trains the demo model for one hyper-parameter setting (plain PyTorch).

Model: transformers' Gemma3ForCausalLM built from demo_arch (fp32 master
weights, bf16 autocast on the GPU). Data (from tokenize_data.py):
  - language-model rows: <bos> + 511 tokens cut at a random offset of the
    training token stream, every target counted;
  - chat rows (a fixed fraction of each batch): one packed conversation,
    only the model's answers and their <end_of_turn> counted.
The loss mixes the two means: (1 - w) * LM NLL + w * chat-answer NLL (chat
answers are few tokens per row, so a plain token mean would all but ignore them).
AdamW (betas 0.9/0.95, weight decay on matrices only), linear warm-up, cosine
decay to 10% of the peak, gradient clipping at 1.0. Optional dropout on the
output of each attention and MLP block (a training-only forward hook; the
architecture is unchanged). The number of steps is `--epochs` passes over the
training stream, cut down to fit `--budget` seconds (measured after 50 steps).
Every eval: loss on the validation split (windows of <bos> + 255 tokens) and
on single-turn validation chats; the best (lowest val loss) weights are saved
in bf16 to --ckpt, and the log to --log.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_arch  # noqa: E402

BOS = 2


def add_dropout(model, p):
    if p <= 0:
        return

    def hook(mod, inp, out):
        return F.dropout(out, p, mod.training)

    for layer in model.model.layers:
        layer.post_attention_layernorm.register_forward_hook(hook)
        layer.post_feedforward_layernorm.register_forward_hook(hook)


def lm_windows(stream, win):
    """[n, win]: <bos> + consecutive chunks of win-1 tokens (remainder dropped)."""
    n = len(stream) // (win - 1)
    x = stream[: n * (win - 1)].reshape(n, win - 1)
    return torch.cat([torch.full((n, 1), BOS, dtype=x.dtype), x], 1)


def masked_nll(logits, ids, mask):
    """Sum and count of next-token NLL where mask (of the target position) is 1."""
    lg = logits[:, :-1].float()
    tgt = ids[:, 1:]
    m = mask[:, 1:].float()
    nll = F.cross_entropy(lg.reshape(-1, lg.size(-1)), tgt.reshape(-1), reduction="none")
    nll = nll.view_as(m)
    return (nll * m).sum(), m.sum()


@torch.no_grad()
def evaluate(model, sets, bs=64):
    model.eval()
    out = []
    for ids, mask in sets:
        tot = torch.zeros((), device=ids.device)
        cnt = torch.zeros((), device=ids.device)
        for i in range(0, len(ids), bs):
            x, m = ids[i:i + bs], mask[i:i + bs]
            with torch.autocast("cuda", dtype=torch.bfloat16):
                lg = model(input_ids=x, use_cache=False).logits
            s, c = masked_nll(lg, x, m)
            tot += s
            cnt += c
        out.append((tot / cnt).item())
    model.train()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ids", required=True, help="folder from tokenize_data.py")
    ap.add_argument("--name", required=True)
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--epochs", type=float, default=30)
    ap.add_argument("--budget", type=float, default=300, help="seconds of training")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--wd", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--chat-frac", type=float, default=0.25, help="share of rows that are chats")
    ap.add_argument("--chat-weight", type=float, default=0.25,
                    help="loss = (1-w) * LM-row mean NLL + w * chat-answer mean NLL")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    t_begin = time.time()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    dev = "cuda"
    torch.backends.cuda.matmul.allow_tf32 = True
    gen = torch.Generator(device=dev)
    gen.manual_seed(args.seed)

    def load(name):
        return torch.from_numpy(np.load(os.path.join(args.ids, name)).astype(np.int64))

    train = load("train_ids.npy").to(dev)
    val_win = lm_windows(load("val_ids.npy"), 256).to(dev)
    chat_ids, chat_mask = load("chat_train_ids.npy").to(dev), load("chat_train_mask.npy").to(dev)
    cval_ids, cval_mask = load("chat_val_ids.npy").to(dev), load("chat_val_mask.npy").to(dev)
    assert chat_ids.shape[1] == args.seq
    eval_sets = [(val_win, torch.ones_like(val_win)), (cval_ids, cval_mask)]

    from transformers import Gemma3ForCausalLM

    cfg = demo_arch.build_config()
    model = Gemma3ForCausalLM(cfg).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == demo_arch.count_params(), (n_params, demo_arch.count_params())
    add_dropout(model, args.dropout)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.wd},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8, fused=True)

    n_chat = int(round(args.batch * args.chat_frac))
    n_lm = args.batch - n_chat
    steps_per_epoch = len(train) / (n_lm * (args.seq - 1))
    total = max(100, int(args.epochs * steps_per_epoch))
    eval_every = max(50, total // 25)
    log = {"name": args.name, "args": vars(args), "params": n_params,
           "train_tokens": len(train), "steps_per_epoch": steps_per_epoch,
           "attn_implementation": getattr(model.config, "_attn_implementation", None),
           "planned_steps": total, "curve": [], "evals": [], "best": None}
    print("[%s] params %d, train tokens %d, %.1f steps/epoch, planned %d steps"
          % (args.name, n_params, len(train), steps_per_epoch, total), flush=True)

    def lr_at(step):
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        prog = min(1.0, (step - args.warmup) / max(1, total - args.warmup))
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * prog)))

    def save_log():
        with open(args.log, "w") as f:
            json.dump(log, f, indent=1)

    ar = torch.arange(args.seq - 1, device=dev)
    bos_col = torch.full((n_lm, 1), BOS, device=dev, dtype=torch.long)
    t_start = time.time()
    t10 = None
    run_loss = torch.zeros((), device=dev)
    run_lm = torch.zeros((), device=dev)
    run_n = 0
    best = float("inf")
    step = 0
    while step < total:
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        starts = torch.randint(0, len(train) - (args.seq - 1), (n_lm,), device=dev, generator=gen)
        x_lm = torch.cat([bos_col, train[starts[:, None] + ar[None]]], 1)
        ci = torch.randint(0, len(chat_ids), (n_chat,), device=dev, generator=gen)
        x = torch.cat([x_lm, chat_ids[ci]])
        m = torch.cat([torch.ones_like(x_lm), chat_mask[ci]])
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(input_ids=x, use_cache=False).logits
        s_lm, c_lm = masked_nll(logits[:n_lm], x[:n_lm], m[:n_lm])
        s_ch, c_ch = masked_nll(logits[n_lm:], x[n_lm:], m[n_lm:])
        loss = (1 - args.chat_weight) * s_lm / c_lm + args.chat_weight * s_ch / c_ch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        run_loss += loss.detach()
        run_lm += (s_lm / c_lm).detach()
        run_n += 1
        step += 1
        if step == 10:
            torch.cuda.synchronize()
            t10 = time.time()
        if step == 60:
            torch.cuda.synchronize()
            dt = (time.time() - t10) / 50
            left = args.budget - (time.time() - t_start)
            fit = step + int(0.9 * left / dt)
            log["step_time_s"] = dt
            if fit < total:
                log["cut_to_budget"] = {"from": total, "to": fit}
                total = fit
                eval_every = max(50, total // 25)
            print("[%s] %.1f ms/step -> %d steps" % (args.name, dt * 1e3, total), flush=True)
        if step % 20 == 0:
            # [step, mixed loss, LM-row loss, lr], means over the last 20 steps
            log["curve"].append([step, run_loss.item() / run_n, run_lm.item() / run_n,
                                 lr_at(step - 1)])
            run_loss.zero_()
            run_lm.zero_()
            run_n = 0
        if step % eval_every == 0 or step == total:
            vl, cl = evaluate(model, eval_sets)
            el = time.time() - t_start
            log["evals"].append([step, vl, cl, el])
            tl = log["curve"][-1][2] if log["curve"] else float("nan")
            print("[%s] step %d/%d train %.4f val %.4f (ppl %.1f) chat %.4f  %.0fs"
                  % (args.name, step, total, tl, vl, math.exp(vl), cl, el), flush=True)
            if vl < best:
                best = vl
                log["best"] = {"step": step, "val_loss": vl, "chat_val_loss": cl,
                               "epochs": step / steps_per_epoch}
                sd = {k: v.detach().to(torch.bfloat16).cpu() for k, v in model.state_dict().items()}
                torch.save(sd, args.ckpt + ".tmp")
                os.replace(args.ckpt + ".tmp", args.ckpt)
            save_log()
        if time.time() - t_start > args.budget + 20:
            log["stopped_early_at"] = step
            print("[%s] out of time at step %d" % (args.name, step), flush=True)
            break
    log["final_step"] = step
    log["wall_s"] = time.time() - t_begin
    save_log()
    print("[%s] done: best %s" % (args.name, log["best"]), flush=True)


if __name__ == "__main__":
    main()
