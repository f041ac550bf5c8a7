"""Keras 3 builders, layers, losses and metrics for five medical attention networks.

``import zoo`` registers every custom layer, loss and metric, so ``.keras`` files
saved from this package load with plain ``keras.models.load_model``.
"""
__version__ = "0.1.0"
