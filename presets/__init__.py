"""The shipped default model and preset bank, the Max/Pd patches and a MIDI phrase (package data)."""
