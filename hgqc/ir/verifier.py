"""IR verifier: structural invariants plus 'every stored type holds what its op can produce'."""

from __future__ import annotations

from .graph import Graph
from .ops import OPS, Op
from .types import TensorType


class VerificationError(ValueError):
    pass


def contains(outer: TensorType, inner: TensorType) -> bool:
    """True if every value ``inner`` allows is representable in ``outer`` (same shape)."""
    if outer.shape != inner.shape:
        return False
    for o, i in zip(outer.elems, inner.elems):
        if i.is_zero:
            continue
        if i.f > o.f:
            # inner may hold values off outer's grid unless its bounds happen to sit on it;
            # a finer inner grid is only allowed for constants on the coarser grid
            if not (i.is_const and i.lo % (1 << (i.f - o.f)) == 0):
                return False
            lo = hi = i.lo >> (i.f - o.f)
        else:
            lo, hi = i.lo << (o.f - i.f), i.hi << (o.f - i.f)
        if lo < o.lo or hi > o.hi:
            return False
    return True


def verify(g: Graph) -> None:
    seen: set[int] = set()
    for n in g.nodes.values():
        where = f'%{n.id} ({n.op.value} "{n.name}")'
        d = OPS.get(n.op)
        if d is None:
            raise VerificationError(f'{where}: unknown op')
        if d.arity is not None and len(n.inputs) != d.arity:
            raise VerificationError(f'{where}: expects {d.arity} operands, has {len(n.inputs)}')
        if d.arity is None and not n.inputs:
            raise VerificationError(f'{where}: needs at least one operand')
        for i in n.inputs:
            if i.id not in seen:
                raise VerificationError(f'{where}: uses %{i.id} before its definition')
            if n not in i.users:
                raise VerificationError(f'{where}: use-list of %{i.id} is stale')
        for u in n.users:
            if g.nodes.get(u.id) is not u or n not in u.inputs:
                raise VerificationError(f'{where}: stale user %{u.id}')
        if n.op is Op.INPUT:
            if n not in g.inputs:
                raise VerificationError(f'{where}: input node not listed in graph inputs')
        else:
            try:
                natural = d.infer(n.attrs, [i.type for i in n.inputs])
            except Exception as e:  # noqa: BLE001
                raise VerificationError(f'{where}: typing rule failed: {e}') from e
            if not contains(n.type, natural):
                raise VerificationError(f'{where}: stored type cannot hold the op result')
        seen.add(n.id)
    for name, v in g.outputs:
        if g.nodes.get(v.id) is not v:
            raise VerificationError(f'output "{name}" refers to a node not in the graph')
    names = [n for n, _ in g.outputs]
    if len(set(names)) != len(names):
        raise VerificationError(f'duplicate output names: {names}')
    inames = [n.name for n in g.inputs]
    if len(set(inames)) != len(inames):
        raise VerificationError(f'duplicate input names: {inames}')
