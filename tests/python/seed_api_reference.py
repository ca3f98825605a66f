"""The seed README's API reference ("API参考") blocks, verbatim, one after the other.

Only the import before the marker is added (the reference assumes it).
"""
from pathlib import Path

from experiment_manager.core.experiment import Experiment

# ---- the seed README's code blocks, unchanged, from here on ----
exp = Experiment(
    name="experiment_name",           # 实验名称
    command="python train.py",        # 执行命令
    base_dir=Path("./experiments"),   # 基础目录
    tags=["tag1", "tag2"],           # 标签
    gpu_ids=[0],                      # 指定使用的 GPU（可选）
    description="baseline sweep"      # 实验描述（可选）
)

# 更新当前行的字段
exp.upd_row(epoch=1, loss=0.5, accuracy=0.85)

# 保存当前行到CSV
exp.save_row()

# 加载数据进行分析
df = exp.load_metrics_df()           # pandas DataFrame
metrics = exp.load_metrics_dict()    # 字典列表

exp.set_running(pid=12345)           # 标记为运行状态
exp.set_finished()                   # 标记为完成状态
exp.append_log("训练开始")            # 添加日志
