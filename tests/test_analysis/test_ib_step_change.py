"""mean |G - G0| per LTM layer: 0 without the IB step, the applied
weights' distance from the prior with it."""
import warnings

import torch
from torch import nn

from ltm_mm.analysis.ib_step_change import ib_step_change
from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
from ltm_mm.models.layers import LearnableMergeMask


class TwoLayers(nn.Module):

    def __init__(self):
        super().__init__()
        self.first = LearnableMergeMask(8, 0.5, num_classes=4)
        self.second = LearnableMergeMask(8, 0.5, num_classes=4)

    def forward(self, tokens):
        return [self.first(tokens, (10, 10)), self.second(tokens, (10, 10))]


def test_change_is_zero_without_statistics_and_measured_with_them():
    torch.manual_seed(0)
    model = TwoLayers().eval()
    batches = [torch.randn(3, 100, 8) for _ in range(2)]
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        rows = ib_step_change(model, batches, model)
    assert [r['name'] for r in rows] == ['first', 'second']
    assert all(r['change'] == 0 and not r['statistics'] for r in rows)
    assert all(r['theta_moved'] == 0 for r in rows)
    assert rows[0]['merged_tokens'] == 2 * 3 * 64  # batches x B x P
    fill_synthetic_statistics(model.first)
    with torch.no_grad():
        model.first.mlp_out.weight.normal_(0, 5.0)
        plans = [model.first(b, (10, 10)) for b in batches]
    rows = ib_step_change(model, batches, model)
    g0 = torch.softmax(model.first.window_priors(
        plans[0].table, torch.float32).logits, -1)
    expected = torch.cat([(p.weights - g0).abs().sum(-1).reshape(-1)
                          for p in plans]).mean()
    assert rows[0]['statistics'] and rows[0]['change'] > 1e-4
    torch.testing.assert_close(torch.tensor(rows[0]['change']), expected)
    assert rows[1]['change'] == 0


def test_the_tool_on_a_detector(tmp_path, capsys):
    """tools/analyze_ib_step.py on the SSDLite LTM demo detector (random
    weights, no statistics): one row per LTM layer, and errors named."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, init_default_scope

    from ltm_mm.datasets import demo_shapes
    from project_scripts import ROOT, load_script
    tool = load_script('tools/analyze_ib_step.py')
    config = ROOT / 'configs' / 'demo' / 'ssdlite_ltm-mobilevit-xs_demo.py'
    data = tmp_path / 'shapes'
    demo_shapes.generate(str(data), num_train=1, num_val=1)
    cfg = Config.fromfile(str(config))
    init_default_scope('mmdet')
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        model = MODELS.build(cfg.model)
    checkpoint = tmp_path / 'det.pth'
    torch.save(dict(state_dict=model.state_dict()), checkpoint)
    options = ['--cfg-options', f'test_dataloader.dataset.data_root={data}']
    assert tool.main([str(config), str(checkpoint), '--max-images', '1',
                      *options]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith('| backbone.')]
    assert len(rows) == 9
    assert all('| no | 0.0000 |' in row for row in rows)
    assert tool.main([str(config), str(tmp_path / 'none.pth'), *options]) == 2
    assert 'none.pth' in capsys.readouterr().err
