"""Compiler passes over the networkx IR (compiler/ir.py), one module each."""
