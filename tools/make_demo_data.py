"""Generate the synthetic COCO-format shapes dataset of the detection demo.

    python tools/make_demo_data.py data/demo [--num-train 400] [--num-val 100]
        [--seed 0]

Writes OUT_DIR/annotations/instances_{train,val}.json and the images under
OUT_DIR/train/ and OUT_DIR/val/; does nothing when OUT_DIR already holds
data generated with the same parameters (OUT_DIR/demo_data.json).
"""
import argparse
import time

from ltm_mm.datasets.demo_shapes import generate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num-train', type=int, default=400,
                        help='training images')
    parser.add_argument('--num-val', type=int, default=100,
                        help='validation images')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    start = time.time()
    params = generate(args.out_dir, args.num_train, args.num_val, args.seed)
    print(f'demo detection data in {args.out_dir} '
          f'({time.time() - start:.1f} s): {params}')


if __name__ == '__main__':
    main()
