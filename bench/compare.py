#!/usr/bin/python3
"""bench/compare.py: ignis against PyTorch on the same training work, side by side.

For each config (model, batch, threads) it runs `ignis bench` and torch_ref.py alternately,
REPS times each, with the same step count (chosen so a run takes about SECONDS seconds at
the expected speed), and prints a Markdown table: median train images/s of each, the ratio
ignis/PyTorch, the peak RSS of both (from wait4, measured the same way for both
processes), and what ignis reports about itself (fraction of the machine's sgemm GFLOP/s,
heap allocations per step). Both programs use the train set of Fashion-MNIST, normalised
the same way, as contiguous slices, SGD lr 0.05 momentum 0.9 weight decay 5e-4, 10 warm-up
steps. Without torch (python3-torch) only the ignis columns are filled, with a note.

usage: compare.py --ignis build/ignis [--torch torch_ref.py] [--reps 5] [--seconds 4]
                  [--configs 'mlp:64:2 cnn:256:1 ...'] [--synthetic]
"""
import argparse
import importlib.util
import os
import re
import selectors
import statistics
import subprocess
import sys
import time

DEFAULT_CONFIGS = ('mlp:64:2 mlp:256:2 cnn:64:2 cnn:256:2 cnn:64:1 cnn:256:1 '
                   'resnet8:64:2 resnet8:256:2 resnet20:64:2 resnet20:256:2')
# Rough images/s on the 2-core machine (PyTorch's, from issue 6), only to size the runs.
EXPECTED_RATE = {'mlp': 10000, 'cnn': 2000, 'resnet8': 1500, 'resnet20': 600, 'resnet56': 200}


def run_rss(cmd):
    """Runs cmd; returns (exit status, stdout, stderr, peak RSS in MiB of that process,
    from wait4 so that both programs are measured the same way)."""
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    pid = os.posix_spawn(cmd[0], cmd, os.environ,
                         file_actions=[(os.POSIX_SPAWN_DUP2, w_out, 1), (os.POSIX_SPAWN_DUP2, w_err, 2),
                                       (os.POSIX_SPAWN_CLOSE, r_out), (os.POSIX_SPAWN_CLOSE, r_err)])
    os.close(w_out)
    os.close(w_err)
    # Read both pipes as data arrives, so neither can fill up and block the child.
    sel = selectors.DefaultSelector()
    bufs = {r_out: [], r_err: []}
    for fd in (r_out, r_err):
        sel.register(fd, selectors.EVENT_READ)
    open_fds = 2
    while open_fds:
        for key, _ in sel.select():
            chunk = os.read(key.fd, 65536)
            if chunk:
                bufs[key.fd].append(chunk)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
                open_fds -= 1
    _, status, ru = os.wait4(pid, 0)
    out = b''.join(bufs[r_out]).decode(errors='replace')
    err = b''.join(bufs[r_err]).decode(errors='replace')
    return os.waitstatus_to_exitcode(status), out, err, ru.ru_maxrss / 1024.0


def field(text, pattern):
    m = re.search(pattern, text)
    return float(m.group(1)) if m else None


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, digits=0):
    return '-' if x is None else f'{x:,.{digits}f}'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--ignis', default='build/ignis')
    ap.add_argument('--torch', default='', help='path of torch_ref.py ("" or missing: ignis only)')
    ap.add_argument('--python', default=sys.executable, help='interpreter for torch_ref.py')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--seconds', type=float, default=4.0, help='target length of one run')
    ap.add_argument('--configs', default=DEFAULT_CONFIGS, help="'model:batch:threads ...'")
    ap.add_argument('--synthetic', action='store_true', help='random data in both programs')
    a = ap.parse_args()

    configs = []
    for c in a.configs.split():
        model, batch, threads = c.split(':')
        configs.append((model, int(batch), int(threads)))
    torch_note = None
    if not a.torch or not os.path.exists(a.torch):
        torch_note = f'torch_ref.py not found ({a.torch or "not given"}): ignis numbers only'
    elif importlib.util.find_spec('torch') is None and a.python == sys.executable:
        torch_note = 'python3-torch is not installed: ignis numbers only'
    ignis = os.path.abspath(a.ignis)

    load0 = os.getloadavg()
    print(f'# compare.py: {a.reps} runs per program and config, alternating ignis / PyTorch, '
          f'~{a.seconds:g} s per run; load average at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}',
          flush=True)
    if torch_note:
        print(f'# note: {torch_note}', flush=True)
    rows = []
    t_start = time.time()
    for model, batch, threads in configs:
        steps = max(5, round(a.seconds * EXPECTED_RATE.get(model, 1000) / batch))
        data = ['--synthetic'] if a.synthetic else []
        icmd = [ignis, 'bench', '--model', model, '--batch', str(batch), '--threads', str(threads),
                '--steps', str(steps), '--warmup', '10', '--sgemm-size', '1024'] + data
        tcmd = [a.python, a.torch, model, '--batch', str(batch), '--threads', str(threads),
                '--steps', str(steps)] + data
        res = {'ips': [], 'rss': [], 'frac': [], 'allocs': [], 'tips': [], 'trss': []}
        for rep in range(a.reps):
            code, out, err, rss = run_rss(icmd)
            if code != 0:
                print(f'# ignis failed ({" ".join(icmd)}): {err.strip()}', flush=True)
            else:
                res['ips'].append(field(out, r'train_images_per_s: ([0-9.]+)'))
                res['rss'].append(rss)
                res['frac'].append(field(out, r'sgemm_fraction_pct: ([0-9.]+)'))
                res['allocs'].append(field(out, r'heap_allocs_per_step: ([0-9.]+)'))
            if not torch_note:
                code, out, err, rss = run_rss(tcmd)
                if code != 0:
                    print(f'# torch failed ({" ".join(tcmd)}): {err.strip()[-300:]}', flush=True)
                else:
                    res['tips'].append(field(out, r'train_img_per_s=([0-9.]+)'))
                    res['trss'].append(rss)
        i, t = median(res['ips']), median(res['tips'])
        row = (f'{model} b{batch} t{threads}', i, t, (i / t if i and t else None), median(res['rss']),
               median(res['trss']), median(res['frac']), median(res['allocs']), steps)
        rows.append(row)
        print(f'# {row[0]}: ignis {res["ips"]} torch {res["tips"]}', flush=True)

    load1 = os.getloadavg()
    print()
    print('| config | steps | ignis img/s | PyTorch img/s | ignis/PyTorch | ignis RSS MiB | PyTorch RSS MiB '
          '| ignis % of sgemm | ignis allocs/step |')
    print('|---|---|---|---|---|---|---|---|---|')
    for name, i, t, ratio, rss, trss, frac, allocs, steps in rows:
        print(f'| {name} | {steps} | {fmt(i)} | {fmt(t)} | {fmt(ratio, 2)} | {fmt(rss)} | {fmt(trss)} '
              f'| {fmt(frac, 1)} | {fmt(allocs, 1)} |')
    print()
    print(f'Medians of {a.reps} runs each; {time.time() - t_start:.0f} s in all; load average at end '
          f'{load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} (1/5/15 min).')
    if torch_note:
        print(f'Note: {torch_note}.')


if __name__ == '__main__':
    main()
