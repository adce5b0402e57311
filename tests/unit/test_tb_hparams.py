"""Column order and Trial IDs of TensorBoard's HPARAMS tab, from the pure pieces (the real server is in
tests/integration/test_tensorboard.py)."""

from tensorboard.plugins.hparams import metadata as hp_metadata

from archfuse.tb_hparams import hparams_summaries, job_label, overridden_keys, trial_id, varied_keys


def test_overridden_keys_drop_prefixes_and_hydra_keys():
    assert overridden_keys(["model=convnet", "+x.y=1", "++z=2", "~w", "model.width=8",
                            "hydra.sweeper.n_trials=3"]) == {"model", "x.y", "z", "w", "model.width"}


def test_varied_keys_are_swept_and_overridden_keys_present_in_the_hparams():
    hp = {"model": "convnet", "model.width": 8, "seed": 1, "cv.fold": 0, "data.batch_size": 64}
    job = {"overrides": ["model=convnet", "model.width=8", "debug=fast"], "swept": {"model.width"}}
    assert varied_keys(hp, job) == {"model", "model.width", "cv.fold"}
    assert varied_keys(hp, {"overrides": ["seeds=3"]}) == {"seed", "cv.fold"}
    assert varied_keys({"model.width": 8}, {}) == set()


def test_job_label_is_short_enough_for_the_trial_id_column():
    job = {"num": 3, "swept": {"model.width", "model.activation"},
           "overrides": ["debug=fast", "model.activation=relu", "model.width=16", "model=convnet"]}
    assert job_label(job) == "3 activation=relu,width=16"
    assert job_label({"num": 0, "overrides": ["debug=fast"]}) == "0"
    single = {"overrides": ["model.width=8", "debug=fast", "+data.width=2"]}
    assert job_label(single, {"model.width", "data.width"}) == "model.width=8,data.width=2"  # same leaf: full keys
    assert job_label(single) is None  # a single run with no hyperparameter overridden: its directory's name


def test_trial_id_puts_what_tells_runs_apart_first(tmp_path):
    out = tmp_path / "outputs"
    multirun = out / "multiruns" / "2026-12-02_07-01-25" / "0_debug-fast+model.width-8"
    assert trial_id(multirun, out) == "0_debug-fast+model.width-8 · multiruns/2026-12-02_07-01-25"
    assert trial_id(multirun, out, "0 width=8") == "0 width=8 · multiruns/2026-12-02_07-01-25"
    fold = out / "runs" / "2026-12-02_07-01-25_model-seed003" / "fold_1"
    assert trial_id(fold, out) == "model-seed003/fold_1 · runs/2026-12-02_07-01-25"
    assert trial_id(out / "runs" / "2026-12-02_07-01-25_default", out) == "default · runs/2026-12-02_07-01-25"
    assert trial_id(out / "sweeps" / "study" / "12_model.width-8", out) == "12_model.width-8 · sweeps/study"


def test_summaries_mark_varied_keys_and_order_columns_as_tensorboard_shows_them():
    hp = {"data.batch_size": 64, "model": "convnet", "model.width": 8, "bn": True, "cv.folds": 0}
    exp, start, end = hparams_summaries(hp, ["test/loss", "cost/params", "test/acc", "val/acc_best", "extra"],
                                        {"model.width"}, "0_model.width-8 · multiruns/x")
    assert [s.value[0].tag for s in (exp, start, end)] == [hp_metadata.EXPERIMENT_TAG,
                                                          hp_metadata.SESSION_START_INFO_TAG,
                                                          hp_metadata.SESSION_END_INFO_TAG]
    experiment = hp_metadata.parse_experiment_plugin_data(exp.value[0].metadata.plugin_data.content)
    assert [(h.name, h.differs) for h in experiment.hparam_infos] == [
        ("model.width", True), ("bn", False), ("cv.folds", False), ("data.batch_size", False), ("model", False)]
    assert [m.name.tag for m in experiment.metric_infos] == ["val/acc_best", "test/acc", "cost/params",
                                                             "test/loss", "extra"]
    info = hp_metadata.parse_session_start_info_plugin_data(start.value[0].metadata.plugin_data.content)
    assert info.group_name == "0_model.width-8 · multiruns/x"
    assert info.hparams["model.width"].number_value == 8 and info.hparams["bn"].bool_value is True
    assert info.hparams["model"].string_value == "convnet"


def test_swept_keys_come_from_multirun_yaml_and_the_sweepers_params(tmp_path):
    from archfuse.tb_hparams import _swept_keys

    (tmp_path / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    task: [debug=fast, model=convnet, 'model.width=8,16', 'seed=range(1,3)']\n")
    assert _swept_keys(tmp_path, None) == {"model.width", "seed"}
    assert _swept_keys(tmp_path / "none", {"model.depth": "choice(2, 3)"}) == {"model.depth"}
