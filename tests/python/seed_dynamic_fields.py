"""The seed README's dynamic-fields example ("动态字段示例"), verbatim.

The seed's block starts from an existing `exp`; the lines before the marker make one, as the
seed's API reference ("实验创建") does. The seed shows the CSV this produces:

    timestamp,run_id,model,accuracy,f1_score,precision
    2025-09-26T14:30:15,run_0001,CNN,0.85,,
    2025-09-26T14:30:45,run_0001,CNN,0.88,0.87,0.89
"""
from pathlib import Path

from experiment_manager.core.experiment import Experiment

exp = Experiment(name="dynamic_fields", command="python seed_dynamic_fields.py",
                 base_dir=Path("./experiments"))
# ---- the seed README's code block, unchanged, from here on ----
# 第一行：基础字段
exp.upd_row(model="CNN", accuracy=0.85)
exp.save_row()

# 第二行：添加新字段 - CSV自动扩展
exp.upd_row(
    model="CNN", 
    accuracy=0.88,
    f1_score=0.87,     # 新字段
    precision=0.89     # 新字段
)
exp.save_row()
