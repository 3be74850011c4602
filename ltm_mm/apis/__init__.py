from .cli import (CLIError, apply_common_overrides,
                  check_classification_config, check_data_roots,
                  check_file_exists, enable_amp, load_config, ordered_loader)

__all__ = [
    'CLIError', 'apply_common_overrides', 'check_classification_config',
    'check_data_roots',
    'check_file_exists', 'enable_amp', 'load_config', 'ordered_loader'
]
