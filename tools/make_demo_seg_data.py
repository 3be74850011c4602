"""Generate the synthetic shapes dataset of the segmentation demo.

    python tools/make_demo_seg_data.py data/demo_seg [--num-train 400]
        [--num-val 100] [--size 128] [--seed 0]

Writes images under OUT_DIR/img_dir/{train,val}/ and their label maps
(0 background, 1 square, 2 circle, 3 triangle) under
OUT_DIR/ann_dir/{train,val}/; does nothing when OUT_DIR already holds data
generated with the same parameters (OUT_DIR/demo_seg_data.json).
"""
import argparse
import time

from ltm_mm.datasets.demo_segmentation import generate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out_dir')
    parser.add_argument('--num-train', type=int, default=400,
                        help='training images')
    parser.add_argument('--num-val', type=int, default=100,
                        help='validation images')
    parser.add_argument('--size', type=int, default=128,
                        help='image side in pixels')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    start = time.time()
    params = generate(args.out_dir, args.num_train, args.num_val, args.seed,
                      args.size)
    print(f'demo segmentation data in {args.out_dir} '
          f'({time.time() - start:.1f} s): {params}')


if __name__ == '__main__':
    main()
