"""What to tell the user about a layer hgqc cannot lower: why, and the nearest supported layer.

``alternative(cls)`` gives ``(reason, suggestion)``: out-of-scope families (recurrent, spiking,
attention; see docs/layers.md) say so explicitly; other layers get a hand-written suggestion or,
failing that, the supported layer whose class name is closest.
"""

from __future__ import annotations

import difflib

OUT_OF_SCOPE = {
    'recurrent': (
        ('QGRU', 'QSimpleRNN', 'GRU', 'LSTM', 'SimpleRNN', 'RNN', 'Bidirectional', 'ConvLSTM1D', 'ConvLSTM2D'),
        'unroll the time steps into QDense / QConv1D layers over a fixed-length window',
    ),
    'spiking': (
        ('QLIF', 'QLIFCell', 'QSimpleSNN', 'QSimpleSNNCell'),
        'use QDense / QConv layers with relu activations on a fixed number of steps',
    ),
    'attention': (
        ('QMultiHeadAttention', 'QMultiHeadAttentionT', 'QLinformerAttention', 'QLinformerAttentionT', 'MultiHeadAttention'),
        'build the attention from QEinsumDense, QEinsum and QSoftmax layers',
    ),
}

SUGGESTIONS = {
    'QConv3D': 'hgq.layers.QConv2D (only 1-D and 2-D convolutions are supported)',
    'QMaxPooling3D': 'hgq.layers.QMaxPooling2D (only 1-D and 2-D pooling is supported)',
    'QAveragePooling3D': 'hgq.layers.QAveragePooling2D (only 1-D and 2-D pooling is supported)',
    'QGlobalMaxPooling3D': 'hgq.layers.QGlobalMaxPooling2D (only 1-D and 2-D pooling is supported)',
    'QGlobalAveragePooling3D': 'hgq.layers.QGlobalAveragePooling2D (only 1-D and 2-D pooling is supported)',
    'DepthwiseConv1D': 'hgq.layers.QConv1D with groups equal to the number of channels',
    'DepthwiseConv2D': 'hgq.layers.QConv2D with groups equal to the number of channels',
    'SeparableConv1D': 'hgq.layers.QConv1D with groups=channels followed by a 1-wide hgq.layers.QConv1D',
    'SeparableConv2D': 'hgq.layers.QConv2D with groups=channels followed by a 1x1 hgq.layers.QConv2D',
    'Conv1DTranspose': 'hgq.layers.QConv1D after keras.layers.UpSampling1D',
    'Conv2DTranspose': 'hgq.layers.QConv2D after keras.layers.UpSampling2D',
    'Cropping3D': 'keras.layers.Cropping2D',
    'ZeroPadding3D': 'keras.layers.ZeroPadding2D',
    'UpSampling3D': 'keras.layers.UpSampling2D',
    'Embedding': 'hgq.layers.QDense on a one-hot input',
}


def alternative(cls_name: str, supported: list[str]) -> tuple[str, str]:
    """(reason, nearest supported alternative) for a layer class hgqc cannot lower."""
    for family, (names, hint) in OUT_OF_SCOPE.items():
        if cls_name in names:
            return f'out of scope ({family} layers are not compiled by hgqc)', hint
    if cls_name in SUGGESTIONS:
        return 'not supported', f'use {SUGGESTIONS[cls_name]}'
    short = {s.rsplit('.', 1)[-1]: s for s in supported}
    close = difflib.get_close_matches(cls_name, list(short), n=1, cutoff=0.5)
    if close:
        return 'not supported', f'the nearest supported layer is {short[close[0]]}'
    return 'not supported', 'see docs/layers.md for the supported layers'
