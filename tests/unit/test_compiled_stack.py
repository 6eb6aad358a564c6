"""The compiled OpenMMLab stack is installed: mmcv ops run, mmdet/mmseg register."""

import torch


def test_mmcv_nms_matches_a_hand_computation():
    from mmcv.ops import nms

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # IoU(box0, box1) = 81 / (100 + 100 - 81) = 0.68 > 0.5: box1 is suppressed.
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [0, 2]
    _, keep_loose = nms(boxes, scores, iou_threshold=0.7)
    assert keep_loose.tolist() == [0, 1, 2]


def test_mmcv_and_torchvision_nms_agree_on_random_boxes():
    import torchvision
    from mmcv.ops import nms

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(200, 2, generator=g) * 100
    wh = torch.rand(200, 2, generator=g) * 30 + 1
    boxes = torch.cat([xy, xy + wh], 1)
    scores = torch.rand(200, generator=g)
    _, keep = nms(boxes, scores, iou_threshold=0.4)
    assert keep.tolist() == torchvision.ops.nms(boxes, scores, 0.4).tolist()


def test_mmdet_and_mmseg_register_their_modules():
    from mmdet.utils import register_all_modules as register_det
    from mmseg.utils import register_all_modules as register_seg

    register_det(init_default_scope=False)
    register_seg(init_default_scope=False)
    from mmdet.registry import MODELS as DET_MODELS
    from mmseg.registry import MODELS as SEG_MODELS

    assert DET_MODELS.get("FasterRCNN") is not None
    assert SEG_MODELS.get("EncoderDecoder") is not None
