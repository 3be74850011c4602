"""Generate the stage-1 data of the two-stage demo: an ImageNet-style
folder of synthetic object images (12 classes: 3 shapes x 4 colours).

    python tools/make_demo_object_data.py data/demo_objects \
        [--num-train 80] [--num-val 20] [--size 128]
"""
import argparse

from ltm_mm.datasets.demo_objects import generate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num-train', type=int, default=80,
                        help='training images per class')
    parser.add_argument('--num-val', type=int, default=20,
                        help='validation images per class')
    parser.add_argument('--size', type=int, default=128)
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    params = generate(args.out_dir, args.num_train, args.num_val, args.size,
                      args.seed)
    print(f'demo object data in {args.out_dir}: {len(params["classes"])} '
          f'classes, {params["num_train"]} + {params["num_val"]} images per '
          f'class, {params["size"]} px')


if __name__ == '__main__':
    main()
