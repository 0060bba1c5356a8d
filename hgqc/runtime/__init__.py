"""Execution: the bit-exact interpreter and simulator drivers."""

from .interpreter import Interpreter, InterpreterError

__all__ = ['Interpreter', 'InterpreterError']
