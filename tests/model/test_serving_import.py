"""Workers import TensorFlow without Keras (and what Keras drags in) and score exactly the same.

Runs in a fresh interpreter: in the test process TensorFlow and Keras are usually imported already.
"""
import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

_SCRIPT = '''
import json, sys
import numpy as np
from model.handlers import SavedModelHandler
handler = SavedModelHandler(sys.argv[1])
model = handler.load_model()
loaded = {name: name in sys.modules for name in ('tensorflow', 'keras', 'sklearn', 'matplotlib')}
windows = np.random.default_rng(0).uniform(-0.5, 0.5, (3, handler.metadata.window_samples)).astype(np.float32)
scores = handler.score_windows(model, windows).tolist()
import keras  # still importable afterwards
print(json.dumps({'loaded': loaded, 'scores': scores, 'keras': bool(keras.__version__)}))
'''


def test_the_handler_loads_the_model_without_keras_and_scores_the_same(tiny_model_dir):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
    out = subprocess.run([sys.executable, '-c', _SCRIPT, tiny_model_dir], env=env, capture_output=True, text=True,
                         timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report['loaded'] == {'tensorflow': True, 'keras': False, 'sklearn': False, 'matplotlib': False}
    assert report['keras']

    from model.handlers import SavedModelHandler
    handler = SavedModelHandler(tiny_model_dir)   # in this process, with Keras imported the usual way
    windows = np.random.default_rng(0).uniform(-0.5, 0.5, (3, handler.metadata.window_samples)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(report['scores'], np.float32),
                                  handler.score_windows(handler.load_model(), windows))
