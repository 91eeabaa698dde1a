"""Signal-propagation theory for skipless transformers."""
