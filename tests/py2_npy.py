"""Write weights files the way Python 2's NumPy wrote the public vgg16.npy, opcode by opcode.

Python 3 cannot produce this layout with np.save (its pickles use protocol 3+ and unicode
strings), so the tests build it by hand, following the disassembly in
shared/formats/vgg16-npy-layout.md: an .npy 1.0 header for a 0-d '|O' array, then a protocol-2
pickle whose strings are Python 2 str (SHORT_BINSTRING / BINSTRING) and whose only globals are
numpy.core.multiarray._reconstruct, numpy.ndarray and numpy.dtype.
"""

import struct

import numpy as np

RECONSTRUCT, NDARRAY, DTYPE = 1, 2, 4  # memo slots of the three globals, as in the real file


def _string(s):
    data = s if isinstance(s, bytes) else s.encode("latin1")
    if len(data) < 256:
        return b"U" + bytes([len(data)]) + data
    return b"T" + struct.pack("<I", len(data)) + data


def _int(n):
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    return b"J" + struct.pack("<i", n)


def _get(slot):
    return b"h" + bytes([slot])


class _Writer:
    """Numbers the memo slots the way Python 2's pickler did (BINPUT after each new object)."""

    def __init__(self):
        self.slot = 0

    def put(self):
        self.slot += 1
        if self.slot < 256:
            return b"q" + bytes([self.slot])
        return b"r" + struct.pack("<I", self.slot)

    def new_array(self):
        """_reconstruct(ndarray, (0,), 'b'), as every array in the file starts."""
        return (_get(RECONSTRUCT) + _get(NDARRAY) + _int(0) + b"\x85" + _string("b") + b"\x87R"
                + self.put())

    def float32_array(self, a):
        a = np.ascontiguousarray(a, dtype="<f4")
        head = self.new_array() + b"(" + _int(1) + b"(" + b"".join(_int(d) for d in a.shape) + b"t"
        dtype = _get(DTYPE) + _string("f4") + _int(0) + _int(1) + b"\x87R" + self.put()
        state = b"(" + _int(3) + _string("<") + b"NNN" + _int(-1) + _int(-1) + _int(0) + b"tb"
        return head + dtype + state + b"\x89" + _string(a.tobytes()) + b"tb"

    def file(self, layers, key_order):
        out = [b"\x80\x02", b"cnumpy.core.multiarray\n_reconstruct\n" + self.put(),
               b"cnumpy\nndarray\n" + self.put()]
        out.append(_int(0) + b"\x85" + _string("b") + b"\x87R" + self.put())
        out.append(b"(" + _int(1) + b")" + b"cnumpy\ndtype\n" + self.put())
        out.append(_string("O8") + _int(0) + _int(1) + b"\x87R" + self.put())
        out.append(b"(" + _int(3) + _string("|") + b"NNN" + _int(-1) + _int(-1) + _int(63)
                   + b"tb")
        out.append(b"\x89]" + self.put() + b"}" + self.put() + b"(")
        for layer in key_order:
            weights, biases = layers[layer]
            out.append(_string(layer) + self.put() + b"]" + self.put() + b"("
                       + self.float32_array(weights) + self.float32_array(biases) + b"e")
        # SETITEMS, APPEND the dict to the state's list, close the state tuple, BUILD, STOP.
        out.append(b"uatb.")
        return b"".join(out)


def pickle_bytes(layers, key_order=None):
    """The protocol-2 pickle of a 0-d object array holding {layer: [weights, biases]}."""
    return _Writer().file(layers, list(key_order or layers))


def npy_bytes(pickled):
    header = b"{'descr': '|O', 'fortran_order': False, 'shape': (), }"
    header += b" " * (69 - len(header)) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + pickled


def write(path, layers, key_order=None):
    with open(path, "wb") as f:
        f.write(npy_bytes(pickle_bytes(layers, key_order)))
