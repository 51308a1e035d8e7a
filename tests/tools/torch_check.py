#!/usr/bin/python3
"""Loads an ignis checkpoint into the equivalent PyTorch model and prints its predictions.

usage: torch_check.py CHECKPOINT.safetensors IMAGES-IDX OUT.txt
The checkpoint is read with json+struct (the safetensors package is optional), loaded with
load_state_dict(strict=True) into the zoo `cnn` built as ignis builds it (the reference
architecture of bench/torch_ref.py, sized for the checkpoint's input), and run in eval mode
on the IDX images normalised with the checkpoint's mean/std. Writes one line per image:
the argmax class, then the logits. Used by tests/tools/test_cli_torch.c."""
import json, struct, sys
import numpy as np, torch, torch.nn as nn

DTYPES = {'F32': np.float32, 'F64': np.float64, 'I32': np.int32, 'I64': np.int64, 'U8': np.uint8}

def load_safetensors(path):
    raw = open(path, 'rb').read()
    n, = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    data = raw[8 + n:]
    tensors = {}
    for name, e in header.items():
        b, end = e['data_offsets']
        arr = np.frombuffer(data[b:end], dtype=DTYPES[e['dtype']]).reshape(e['shape'])
        tensors[name] = torch.from_numpy(arr.copy())
    return tensors, meta

def cnn(c, h, w, classes):
    return nn.Sequential(nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * (h // 4) * (w // 4), 128), nn.ReLU(), nn.Linear(128, classes))

def read_idx_images(path):
    raw = open(path, 'rb').read()
    nd = raw[3]
    dims = struct.unpack('>' + 'I' * nd, raw[4:4 + 4 * nd])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)

def main():
    ckpt, images, out = sys.argv[1:4]
    sd, meta = load_safetensors(ckpt)
    assert meta.get('format') == 'pt' and meta.get('model') == 'cnn', meta
    c, h, w, k = (int(meta[x]) for x in ('channels', 'height', 'width', 'num_classes'))
    net = cnn(c, h, w, k)
    net.load_state_dict(sd, strict=True)
    net.eval()
    mean = torch.tensor(json.loads(meta['mean']), dtype=torch.float32).view(1, c, 1, 1)
    std = torch.tensor(json.loads(meta['std']), dtype=torch.float32).view(1, c, 1, 1)
    x = torch.from_numpy(read_idx_images(images).astype(np.float32) / 255.0).view(-1, c, h, w)
    with torch.no_grad():
        logits = net((x - mean) / std)
    with open(out, 'w') as f:
        for row in logits:
            f.write('%d %s\n' % (int(row.argmax()), ' '.join('%.9g' % v for v in row.tolist())))

main()
