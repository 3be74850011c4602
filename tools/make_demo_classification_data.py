"""Generate a small ImageNet-style folder of synthetic images.

    python tools/make_demo_classification_data.py data/demo_cls \
        [--num-classes 4] [--num-train 8] [--num-val 4] [--size 128]
"""
import argparse

from ltm_mm.datasets.demo_classification import generate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num-classes', type=int, default=4)
    parser.add_argument('--num-train', type=int, default=8,
                        help='training images per class')
    parser.add_argument('--num-val', type=int, default=4,
                        help='validation images per class')
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    params = generate(args.out_dir, args.num_classes, args.num_train,
                      args.num_val, args.size, args.seed)
    print(f'demo classification data in {args.out_dir}: {params}')


if __name__ == '__main__':
    main()
