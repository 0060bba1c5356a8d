"""SSA dataflow graph.

Each ``Node`` is one op and the single value it defines. Nodes are kept in a dict in
insertion order, which is always a topological order because a node can only use nodes
that already exist. Use lists (``users``) are maintained by the mutation API
(``add``, ``replace_all_uses``, ``set_inputs``, ``erase``); passes never edit them by hand.
Passes that reorder freely rebuild a new graph with ``Graph.copy_into``-style helpers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .ops import OPS, Op
from .types import TensorType


class Node:
    __slots__ = ('id', 'op', 'inputs', 'attrs', 'type', 'name', 'users', '__weakref__')

    def __init__(self, id: int, op: Op, inputs: tuple[Node, ...], attrs: dict[str, Any], type: TensorType, name: str):
        self.id = id
        self.op = op
        self.inputs = inputs
        self.attrs = attrs
        self.type = type
        self.name = name  # provenance hint: the Keras layer / ONNX node this came from
        self.users: dict[Node, None] = {}  # ordered set

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    def __repr__(self) -> str:
        args = ', '.join(f'%{i.id}' for i in self.inputs)
        return f'%{self.id} = {self.op.value}({args}) "{self.name}"'

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other


Rewrite = Callable[['Graph', Node, dict[Node, Node]], 'Node | None']  # see Graph.rewritten


class Graph:
    def __init__(self, name: str = 'model'):
        self.name = name
        self.nodes: dict[int, Node] = {}
        self.inputs: list[Node] = []
        self.outputs: list[tuple[str, Node]] = []
        self._next_id = 0
        # float->fixed conversion of each input as the model defines it (frontend-provided):
        # {input name: {'k','i','f' arrays, 'round', 'overflow'}} used by predict() on floats.
        self.input_quant: dict[str, dict[str, Any]] = {}
        self.meta: dict[str, Any] = {}

    # ------------------------------------------------------------------ construction
    def add(
        self,
        op: Op,
        inputs: Sequence[Node] = (),
        attrs: dict[str, Any] | None = None,
        type: TensorType | None = None,
        name: str = '',
    ) -> Node:
        """Append a node; its type is inferred from its inputs unless given."""
        attrs = dict(attrs or {})
        inputs = tuple(inputs)
        for i in inputs:
            if self.nodes.get(i.id) is not i:
                raise ValueError(f'{op.value}: operand %{i.id} is not in this graph')
        if type is None:
            type = OPS[op].infer(attrs, [i.type for i in inputs])
        node = Node(self._next_id, op, inputs, attrs, type, name)
        self._next_id += 1
        self.nodes[node.id] = node
        for i in inputs:
            i.users[node] = None
        return node

    def add_input(self, name: str, type: TensorType) -> Node:
        node = self.add(Op.INPUT, (), {'type': type}, type, name)
        self.inputs.append(node)
        return node

    def add_output(self, name: str, node: Node) -> None:
        self.outputs.append((name, node))

    # ------------------------------------------------------------------ mutation
    def set_inputs(self, node: Node, inputs: Sequence[Node]) -> None:
        for i in node.inputs:
            i.users.pop(node, None)
        node.inputs = tuple(inputs)
        for i in node.inputs:
            if i.id >= node.id:
                raise ValueError(f'%{node.id} cannot use later node %{i.id} (order must stay topological)')
            i.users[node] = None

    def replace_all_uses(self, old: Node, new: Node) -> None:
        """Make every user of ``old`` (and the graph outputs) use ``new`` instead."""
        if old is new:
            return
        for user in list(old.users):
            self.set_inputs(user, [new if i is old else i for i in user.inputs])
        self.outputs = [(n, new if v is old else v) for n, v in self.outputs]

    def erase(self, node: Node) -> None:
        if node.users:
            raise ValueError(f'cannot erase %{node.id}: still used by {[u.id for u in node.users]}')
        if any(v is node for _, v in self.outputs):
            raise ValueError(f'cannot erase %{node.id}: it is a graph output')
        for i in node.inputs:
            i.users.pop(node, None)
        del self.nodes[node.id]
        if node in self.inputs:
            self.inputs.remove(node)

    # ------------------------------------------------------------------ queries
    def __iter__(self) -> Iterator[Node]:
        return iter(list(self.nodes.values()))

    def __len__(self) -> int:
        return len(self.nodes)

    def count(self, op: Op) -> int:
        return sum(1 for n in self.nodes.values() if n.op is op)

    def output_nodes(self) -> list[Node]:
        return [n for _, n in self.outputs]

    def renumbered(self) -> Graph:
        """A copy with dense ids 0..n-1 in topological order (what the printer shows)."""
        return self.rewritten()

    def rewritten(self, rewrite: Rewrite | None = None) -> Graph:
        """A copy with dense ids in topological order, in which ``rewrite(new_graph, node, remap)``
        may build a non-input node's replacement (``None``: copy the node as it is); ``remap`` maps
        the old nodes seen so far to their new ones."""
        g = Graph(self.name)
        g.input_quant = dict(self.input_quant)
        g.meta = dict(self.meta)
        remap: dict[Node, Node] = {}
        for n in self.nodes.values():
            if n.op is Op.INPUT:
                remap[n] = g.add_input(n.name, n.type)
                continue
            new = rewrite(g, n, remap) if rewrite is not None else None
            remap[n] = new if new is not None else g.add(n.op, [remap[i] for i in n.inputs], n.attrs, n.type, n.name)
        # keep declared input order even if nodes were created in another order
        g.inputs = [remap[i] for i in self.inputs]
        g.outputs = [(name, remap[v]) for name, v in self.outputs]
        return g

    def copy(self) -> Graph:
        return self.renumbered()
