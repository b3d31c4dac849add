"""skillcall's training side: example files, prompts, datasets, generation, training, export, evaluation."""
