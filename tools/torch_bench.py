#!/usr/bin/env python3
"""tools/torch_bench.py — PyTorch's side of tools/gpu-check.sh's benchmark table, in one process.

Runs the throughput measurement of bench/torch_ref.py (its main(), unchanged: same models,
SGD step, warm-up and timing) for each model and precision setting below, importing torch
and initialising CUDA once instead of once per run, and prints one line per run:

    torch MODEL SETTING train_img_per_s=N cudnn.allow_tf32=B matmul.allow_tf32=B amp=B

Settings (ignis's counterpart in brackets):
  default  PyTorch's own defaults: cuDNN convolutions may use TF32, matmuls do not
           [ignis bench: exact fp32, the headline comparison the issue asks for]
  exact    allow_tf32 off for cuDNN and matmul: fp32 convolutions and GEMMs [ignis bench]
  tf32     allow_tf32 on for both [ignis bench --tf32]
  bf16     defaults plus torch_ref.py --amp (bf16 autocast) [ignis bench --amp bf16]

usage: torch_bench.py TORCH_REF.PY [--models cnn,resnet20] [--settings default,exact,tf32,bf16]
                      [--batch 256] [--steps 30] [--device cuda]
A run that fails prints "torch MODEL SETTING error: ..." and the others go on.
"""
import argparse
import contextlib
import importlib.util
import io
import re
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('torch_ref')
    ap.add_argument('--models', default='cnn,resnet20')
    ap.add_argument('--settings', default='default,exact,tf32,bf16')
    ap.add_argument('--batch', type=int, default=256)
    ap.add_argument('--steps', type=int, default=30)
    ap.add_argument('--device', default='cuda')
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location('torch_ref', a.torch_ref)
    ref = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ref)
    import torch
    b = torch.backends
    defaults = (b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32)
    flags = {'default': defaults, 'exact': (False, False), 'tf32': (True, True), 'bf16': defaults}
    for model in a.models.split(','):
        for setting in a.settings.split(','):
            if setting not in flags:
                print(f'torch {model} {setting} error: unknown setting', flush=True)
                continue
            b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = flags[setting]
            sys.argv = ['torch_ref.py', model, '--device', a.device, '--synthetic', '--batch', str(a.batch),
                        '--steps', str(a.steps)] + (['--amp'] if setting == 'bf16' else [])
            out = io.StringIO()
            try:
                with contextlib.redirect_stdout(out):
                    ref.main()
                m = re.search(r'train_img_per_s=([0-9.]+)', out.getvalue())
                ips = m.group(1) if m else '?'
                print(f'torch {model} {setting} train_img_per_s={ips} cudnn.allow_tf32={b.cudnn.allow_tf32} '
                      f'matmul.allow_tf32={b.cuda.matmul.allow_tf32} amp={setting == "bf16"}', flush=True)
            except (Exception, SystemExit) as e:  # one failing setting must not hide the others
                print(f'torch {model} {setting} error: {type(e).__name__}: {e}', flush=True)
    b.cudnn.allow_tf32, b.cuda.matmul.allow_tf32 = defaults


if __name__ == '__main__':
    main()
