"""ltm_mm: Learnable Token Merging backbones for OpenMMLab.

The OpenMMLab stack (torch, mmcv with compiled ops, mmengine, mmdet,
mmpretrain) is installed by ``make setup`` from ``requirements/pins.txt``;
mmcv in particular must be built with its ops, which pip cannot do from a
plain dependency list.  ``install_requires`` therefore only states the
version ranges this package works with.
"""
from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open('ltm_mm/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='ltm_mm',
    version=read_version(),
    description='Learnable Token Merging (LTM-Transformer) backbones for '
    'MMDetection and MMPretrain',
    packages=find_packages(include=['ltm_mm', 'ltm_mm.*']),
    python_requires='>=3.10',
    install_requires=[
        'mmengine>=0.10.0,<1.0',
        'mmcv>=2.0.0,<2.2.0',
        'mmdet>=3.3.0,<3.4',
        'mmpretrain>=1.2.0,<1.3',
    ],
    license='Apache-2.0',
)
